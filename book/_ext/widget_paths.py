"""Load _ext/static/ptutor-widget-paths.js on every page before the widget scripts, so the widget manager
fetches its fonts from the folder it was loaded from instead of the page's folder (the script says why).

It lives outside the book's _static/ folder because Jupyter Book adds every .js file found there after the
widget scripts, and this one must come first (priority 400; myst-nb adds the widget scripts at 500)."""
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _add_static(app, config):
    config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("config-inited", _add_static)
    app.add_js_file("ptutor-widget-paths.js", priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
