"""Each script once per page. An inline script that an extension adds after the builder starts (sphinx-thebe's
`const THEBE_JS_URL = ...`, sphinx-togglebutton's settings) is registered with the file name None, and Sphinx 7.4
adds the registered scripts again before writing with the file name "", so its duplicate check let both copies
in and the browser logged "Identifier 'THEBE_JS_URL' has already been declared" on every page. This keeps the
first of scripts with the same file (None and "" alike) and attributes whenever one is added."""


def _key(js):
    return js.filename or "", tuple(sorted(js.attributes.items()))  # an inline script's file is None or ""


def _dedupe(scripts: list) -> None:
    seen, unique = set(), []
    for js in scripts:
        if _key(js) not in seen:
            seen.add(_key(js))
            unique.append(js)
    scripts[:] = unique  # in place: the page's context holds this very list


def _wrap_builder(app):
    builder = app.builder
    if not hasattr(builder, "add_js_file") or not hasattr(builder, "_js_files"):
        return  # not an HTML builder
    add = builder.add_js_file

    def add_js_file(*args, **kwargs):
        add(*args, **kwargs)
        _dedupe(builder._js_files)
    builder.add_js_file = add_js_file


def setup(app):
    app.connect("builder-inited", _wrap_builder)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
