"""The "use it" cards page: at build time, the placeholder line of book/cards.md becomes one card per registered
method (ptutor.book.cards.page), read from the registry, the cards' code and the results logs, so the page always
shows the methods there are, the rates the logs picked and the code the tests run."""
PLACEHOLDER = "<!-- cards: written here at build time by book/_ext/cards.py -->"


def fill(app, docname: str, source: list) -> None:
    """Sphinx's source-read hook: replace the placeholder of the cards page with the cards."""
    if docname == "book/cards" and PLACEHOLDER in source[0]:
        from ptutor.book.cards import page

        source[0] = source[0].replace(PLACEHOLDER, page())


def setup(app):
    app.connect("source-read", fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
