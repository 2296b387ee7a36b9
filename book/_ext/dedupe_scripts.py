"""Each script once per page. sphinx-thebe adds its inline configuration (`const THEBE_JS_URL = ...`) every time
its setup event fires, and in a Jupyter Book build that is twice, so every page declared the constant twice and the
browser logged "Identifier 'THEBE_JS_URL' has already been declared". This keeps the first of equal scripts."""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    unique = []
    for js in scripts:
        if js not in unique:
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
