"""Sphinx extension: bibliography labels in the same author-year form as the citations in the text.

sphinxcontrib-bibtex's default style labels entries like [BALB+25] while `bibtex_reference_style:
author_year` cites them as "Allal et al. (2025)"; this registers a pybtex style whose labels are
"Allal et al., 2025", so a reader finds a citation in the list by what the text shows.
"""
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

NAME = "ptutor_author_year"


def _last(person) -> str:
    return " ".join(person.last_names).replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        """"Author et al., year"; two entries with the same label get 2022a, 2022b in the list's order (the
        P-Tuning v2 and (IA)³ papers are both "Liu et al., 2022")."""
        labels = []
        for entry in sorted_entries:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_last(p) for p in people]
            who = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
                   else f"{names[0]} et al." if names else entry.key)
            labels.append(f"{who}, {entry.fields.get('year', 'n.d.')}")
        seen = {}
        for label in labels:
            if labels.count(label) > 1:
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = NAME
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", NAME, AuthorYearLabels)
    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
