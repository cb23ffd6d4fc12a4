"""PocketWorld on a Hugging Face Space, playing the tiny variant.

The Hub runs `python app.py` here after `pip install -r requirements.txt` has installed PocketWorld.
No tiny weights are shipped yet: the Space starts, and the page and the log say that tiny cannot be
played until its weights exist, and how to get them.
The app serves on the address and port the Hub sets (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT).
"""

from core.play.app import main

VARIANT = "tiny"  # the zoo variant this Space plays; README.md's `models:` links its Hub repo

if __name__ == "__main__":
    main(["--model", VARIANT])
