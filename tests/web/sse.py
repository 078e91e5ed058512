"""Reading a server-sent event stream through the Flask test client, event by event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from werkzeug.test import TestResponse


class Events:
    """The events of one streamed response, read as the server sends them: `next()` blocks
    until the server yields its next event (the stream's generator runs in the caller's
    thread)."""

    def __init__(self, response: TestResponse) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/event-stream"
        self.response = response
        self.chunks: Iterator[bytes] = iter(response.response)  # type: ignore[arg-type]
        self.buffer = ""

    def next(self, name: str | None = None) -> tuple[str, dict[str, Any]]:
        """The next event (of `name`, when given): (event name, its JSON data). Comments
        (keep-alives) and retry lines are skipped; StopIteration when the stream ends."""
        while True:
            while "\n\n" not in self.buffer:
                chunk = next(self.chunks)
                self.buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            block, self.buffer = self.buffer.split("\n\n", 1)
            event, data = "message", None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
            if data is not None and (name is None or event == name):
                return event, data

    def close(self) -> None:
        self.response.close()
