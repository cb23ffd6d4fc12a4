"""PocketWorld in the browser: `python app.py` serves the play app (what `make play` runs).

The app is the module `core.play.app`, so that an installed package serves it as well;
this file only runs it, with the same options as `pocketworld play`:

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--model nano] [--threads N] [--loop websocket|timer]
"""

from core.play.app import main

if __name__ == "__main__":
    main()
