"""PocketWorld on a Hugging Face Space, playing the nano variant.

The Hub runs `python app.py` here after `pip install -r requirements.txt` has installed PocketWorld.
Its wheel carries nano's weights, so the page opens on nano, ready to play.
The app serves on the address and port the Hub sets (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT).
"""

from core.play.app import main

VARIANT = "nano"  # the zoo variant this Space plays; README.md's `models:` links its Hub repo

if __name__ == "__main__":
    main(["--model", VARIANT])
