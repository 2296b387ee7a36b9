"""The book's teaching helpers: kernel-free widgets (and their .mjs), method diagrams, notebook setup and `show()`,
diagnostics, and a hand-written reference model. They use the engine (ptutor.methods, train, measure, ...); the
engine never imports from here (tests/test_package.py checks the import graph)."""
