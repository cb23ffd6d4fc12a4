"""The logic behind the browser play page, kept out of `app.py` so it is tested without a browser.

- `models`: which zoo variants and registry fine-tunes can be played, and a per-app model cache;
- `upload`: validating an uploaded start image;
- `session`: one player's world (a `core.session.WorldSession`), key state -> action, idle timeout;
- `stats`: frames/s and step latency over a sliding window;
- `recording`: what was played, exported as GIF or MP4;
- `page`: the HTML/JS of the play surface (keyboard and touch capture, the client-paced loop).

The app drives only `WorldSession.reset` / `.step`, as DIAMOND's play UI drives only its
world-model environment.
"""
