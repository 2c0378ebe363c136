"""bench: what p4f-bridge's functions cost, measured against a minimal reference.

    make bench                     (sam build, then: .venv/bin/python -m bench)

Every figure is a median over repeated runs and, where it compares, a ratio to the
reference measured in the same run (these machines are noisy; ratios travel better):

    (1) cold start of each handler      bench.handlers.cold_starts
    (2) warm cost per event             bench.handlers.warm_costs
    (3) the forwarders' requests, events/s  bench.forwarders
        a burst of 500 events to Slack      bench.slack_burst
    (4) the API client against the limit  bench.client_rate
    (5) the built layer's size          bench.layer_size

The reference (bench/reference_receiver.py) is the least a webhook receiver can be. The
printed table is Markdown (README's Performance section holds one); the JSON, with each
figure's spread, goes to bench/results/.

Extending it: a new function is one `Subject` in `bench.subjects.SUBJECTS` (its cold start
comes with every run, its warm cost or its throughput as it says); a new figure is one
function returning `bench.report.Row`s, listed in `bench.__main__.FIGURES`.
"""
