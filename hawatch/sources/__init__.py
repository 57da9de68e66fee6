"""Sources: the only code that does I/O. They connect, parse and emit core events.

Sources never touch widgets and never import Textual; whoever runs them hands
them an ``emit`` callback and decides what to do with the events.
"""

from hawatch.sources.sentinel import (
    SentinelWatcher,
    describe_error,
    parse_masters_reply,
)

__all__ = ["SentinelWatcher", "describe_error", "parse_masters_reply"]
