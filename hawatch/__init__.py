"""hawatch: watch a Redis Sentinel failover from the application's side.

The package is laid out the way the data flows: `sources` do the I/O and emit
events, `core` turns events into state (pure, no clock, no Textual), `views`
render that state, `lab` runs a real cluster for the demo, drills and tests,
and `cli` ties them together.
"""

__version__ = "0.1.0"
