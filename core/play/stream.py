"""The frame stream: a WebSocket route beside Gradio that plays a session at the model's pace.

With `--loop websocket` (the default) the page opens `/pocketworld/stream/<token>` once a
session starts, sends its key state whenever a key changes, and gets each frame back as one
binary message: a 4-byte big-endian header length, a JSON header (the key change the frame was
computed under, the start id and the server's HUD line), then the JPEG. No Gradio queue, no
SSE event, no HTML re-render per frame: the server computes the next frame while the page shows
the last one, and at most MAX_IN_FLIGHT frames wait for the page's acknowledgement, so a slow
browser never builds a backlog. `--loop timer` keeps the gr.Timer loop (core/play/page.py).

The token is unguessable (it grants control of one player's session) and maps to the session
through a weak reference: when Gradio drops the tab's state, the stream ends with it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct
import threading
import weakref
from contextlib import nullcontext

from starlette.websockets import WebSocket, WebSocketDisconnect

from core.play.page import STREAM_PATH, TARGET_FPS

MAX_IN_FLIGHT = 2  # frames sent but not yet shown by the page
MAX_MESSAGE_CHARS = 512  # a key state is a few dozen characters; anything longer is not our page
UNSUPPORTED_DATA = 1003  # RFC 6455's close code for a message of a type the endpoint does not accept
BINARY_REFUSED = "binary messages are not accepted: send the key state as text"


def pack_frame(header: dict, jpeg: bytes) -> bytes:
    """One binary frame message: header length, JSON header, JPEG."""
    meta = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(meta)) + meta + jpeg


def unpack_frame(message: bytes) -> tuple[dict, bytes]:
    """The inverse of pack_frame (the page does the same in JavaScript)."""
    (size,) = struct.unpack(">I", message[:4])
    return json.loads(message[4 : 4 + size]), message[4 + size :]


class FrameStreams:
    """Sessions reachable by token, and the WebSocket handler that plays them.

    `step_frame(session, key_state)` is the controller's step (core.play.controller.Player.step_frame):
    it returns ("frame", header, jpeg) or ("message", html, is_error), and runs in a worker thread
    so the server's event loop keeps answering other players."""

    def __init__(self, step_frame, step_concurrency: int | None = 1):
        self.step_frame = step_frame
        self._sessions: dict[str, weakref.ref] = {}
        self._lock = threading.Lock()
        # players take turns on a small CPU, as the timer loop's concurrency_limit makes them do
        self._turns = threading.BoundedSemaphore(step_concurrency) if step_concurrency else None

    def register(self, session) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._sessions = {t: ref for t, ref in self._sessions.items() if ref() is not None}
            self._sessions[token] = weakref.ref(session)
        return token

    def lookup(self, token: str):
        with self._lock:
            ref = self._sessions.get(token)
        session = ref() if ref else None
        return None if session is None or session.closed else session

    def mount(self, app) -> None:
        """Add the stream route to a running Gradio server's FastAPI app."""
        app.add_api_websocket_route(STREAM_PATH + "/{token}", self.play)

    def _step(self, session, key_state: str):
        with self._turns or nullcontext():
            return self.step_frame(session, key_state)

    async def play(self, websocket: WebSocket, token: str) -> None:
        session = self.lookup(token)
        await websocket.accept()
        if session is None:
            await websocket.send_text(
                json.dumps(
                    {
                        "message": "This game has ended (or the server restarted): press Start to play again.",
                        "error": False,
                    }
                )
            )
            await websocket.close(code=1000)
            return
        state = {"keys": "", "unacked": 0}
        shown = asyncio.Event()

        async def receive() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                text = message.get("text")
                if text is None:  # a binary message: our page sends only text, so say so and close properly
                    await websocket.close(code=UNSUPPORTED_DATA, reason=BINARY_REFUSED)
                    return
                if text == "ack":
                    state["unacked"] = max(0, state["unacked"] - 1)
                    shown.set()
                elif len(text) <= MAX_MESSAGE_CHARS:
                    state["keys"] = text

        receiver = asyncio.create_task(receive())
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while not receiver.done():
                while state["unacked"] >= MAX_IN_FLIGHT and not receiver.done():
                    shown.clear()
                    waiter = asyncio.ensure_future(shown.wait())
                    await asyncio.wait([receiver, waiter], return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                if receiver.done():
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))  # held to the game's 30 FPS
                due = max(due + 1 / TARGET_FPS, loop.time())
                kind, *payload = await asyncio.to_thread(self._step, session, state["keys"])
                if kind == "message":
                    html, error = payload
                    await websocket.send_text(json.dumps({"message": html, "error": error}))
                    await websocket.close(code=1000)
                    return
                header, jpeg = payload
                await websocket.send_bytes(pack_frame(header, jpeg))
                state["unacked"] += 1
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab closed or reloaded mid-frame: nothing to tell it
        finally:
            receiver.cancel()
            if receiver.done() and not receiver.cancelled():
                receiver.exception()  # the disconnect that ended it: expected, and retrieved so asyncio stays quiet
