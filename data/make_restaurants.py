"""Build ptutor's restaurant data-to-text benchmark (data/restaurants/).

    python data/make_restaurants.py                       # rewrites data/restaurants/*.jsonl byte-identically
    python data/make_restaurants.py --seed 7 --out /tmp/restaurants

Each row turns a meaning representation about an invented venue into an English description:

    name[The Brass Lantern] | eatType[pub] | food[Thai] | area[riverside] | near[Market Square]
    -> The Brass Lantern is a Thai pub by the river, close to Market Square.

The *shape* follows the E2E NLG challenge (Novikova et al. 2017: eight restaurant attributes,
several references per input); every name, word list and sentence plan here is our own.
A small compositional realiser produces the references: about twenty opening plans, optional
second and third sentences, random attribute order, and several wordings per value ("cheap",
"inexpensive", "with low prices"; "is not family-friendly", "does not welcome children").
Every reference mentions every attribute of its input and no other attribute value; the
checker `missing()` / `extra()` below confirms this for each reference as it is made, and is
exported for the book's "mentions every input value" metric.

Standard library only, so it runs before the project's venv exists.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 0
OUT = Path(__file__).resolve().parent / "restaurants"
SPLITS = ["train", "dev", "test"]
KEYS = ["name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near"]
N_INPUTS = {"train": 2500, "dev": 150, "test": 300}
TRAIN_TWO_REFS = 1500          # train inputs with two references; the other 1000 have one -> 4000 rows
HELD_OUT_REFS = (3, 5)         # references per dev/test input, inclusive
N_NAMES = {"train": 120, "dev": 30, "test": 50}
N_OTHER_WEIGHTS = {2: 2, 3: 3, 4: 4, 5: 4, 6: 3, 7: 1}   # how many attributes besides name
MIN_WORDS, MAX_WORDS = 8, 40

# ---------------------------------------------------------------- values
EAT_TYPES = ["restaurant", "pub", "coffee shop", "wine bar", "tea room"]
CUISINES = ["Italian", "French", "Indian", "Chinese", "Japanese", "Thai", "Mexican", "Greek", "Spanish",
            "Turkish", "Lebanese", "British", "Korean", "Vietnamese"]
FOODS = CUISINES + ["fast food", "seafood", "vegetarian"]
PRICES = ["cheap", "moderate", "high", "less than £20", "£20-25", "more than £30"]
RATINGS = ["low", "average", "high", "1 out of 5", "3 out of 5", "5 out of 5"]
AREAS = ["city centre", "riverside"]
FAMILY = ["yes", "no"]
# near: landmarks and other venues, shared by all splits; "the" is written before some of them
NEAR_THE = ["Clock Tower", "Corn Exchange", "Old Mill", "Botanic Garden", "Town Hall", "Guildhall",
            "Playhouse", "Maritime Museum", "Hay Market", "Water Tower"]
NEAR_BARE = ["Market Square", "Victoria Station", "Kingsley Park", "Castle Hill", "St Mary's Church",
             "Hollins Bridge", "Queen's Gate", "Abbey Gardens", "The Salt Cellar", "Dovecote Inn",
             "Marlowe's", "The Tin Drum", "Orchard House", "Bramley's Bakery", "The Pickled Walrus",
             "Greystone Hall"]
NEARS = NEAR_THE + NEAR_BARE
VALUES = {"eatType": EAT_TYPES, "food": FOODS, "priceRange": PRICES, "customer rating": RATINGS,
          "area": AREAS, "familyFriendly": FAMILY, "near": NEARS}

# names: "The Brass Lantern", "Golden Fig", "Mabel's Pantry"; dev and test use pools train never sees
NAME_ADJ = """Brass Copper Golden Silver Crimson Velvet Amber Rusty Crooked Blue Scarlet Wandering Sleepy
Hidden Lucky Merry Saffron Juniper Honey Painted Jolly Little Dancing Gilded Humble Twisted Hungry Lazy
Curious Silent""".split()
NAME_NOUN = """Lantern Kettle Fig Anchor Spoon Otter Heron Acorn Thistle Lemon Pear Fox Badger Compass Ladle
Teapot Barrel Whisk Plum Sparrow Quill Bell Harp Crown Moon Pepper Radish Walnut Hare Goose""".split()
NAME_PERSON = "Rosa Mabel Harriet Otis Ezra Nell Ivy Jasper Bea Clem Dora Alfie".split()
NAME_PLACE = "Kitchen Table Pantry Larder Parlour Corner".split()
GENERIC_HEADS = ["place", "venue", "spot"]


# ---------------------------------------------------------------- input syntax
def format_input(rec: dict[str, str]) -> str:
    """`key[value]` pairs joined by ` | `, keys in the canonical order of KEYS."""
    return " | ".join(f"{k}[{rec[k]}]" for k in KEYS if k in rec)


_PAIR = re.compile(r"([A-Za-z][A-Za-z ]*)\[([^\[\]|]+)\]")


def parse_input(text: str) -> dict[str, str]:
    """Inverse of format_input; raises ValueError on anything else."""
    rec = {}
    for part in text.split(" | "):
        m = _PAIR.fullmatch(part)
        if not m or m.group(1) not in KEYS or m.group(1) in rec:
            raise ValueError(f"bad attribute {part!r} in {text!r}")
        rec[m.group(1)] = m.group(2)
    if format_input(rec) != text:
        raise ValueError(f"attributes not in canonical order: {text!r}")
    return rec


# ---------------------------------------------------------------- how each value may be said
def _an(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _near(v: str) -> str:
    return ("the " if v in NEAR_THE else "") + v


def _food_nps(f: str) -> list[str]:
    if f in CUISINES:
        return [f"{f} food", f"{f} food", f"{f} cuisine", f"{f} dishes"]
    if f == "vegetarian":
        return ["vegetarian food", "vegetarian dishes", "vegetarian cuisine"]
    return [f]


_PRICE = {
    "cheap": dict(adj=["cheap", "inexpensive", "low-priced", "budget"],
                  pp=["with low prices", "in the cheap price range", "with cheap prices"],
                  rel=["where prices are low"],
                  fpost=["at low prices", "at budget prices"],
                  pred=["is cheap", "is inexpensive", "is low-priced", "has low prices", "is in the cheap price range"],
                  sent=["Prices are low.", "Its prices are cheap.", "Prices there are low."]),
    "moderate": dict(adj=["moderately priced", "mid-priced", "reasonably priced"],
                     pp=["with moderate prices", "in the moderate price range", "with mid-range prices"],
                     rel=["where prices are moderate"],
                     fpost=["at moderate prices", "at reasonable prices", "at mid-range prices"],
                     pred=["is moderately priced", "has moderate prices", "is reasonably priced",
                           "is in the moderate price range"],
                     sent=["Prices are moderate.", "Its prices are reasonable.", "Prices there are mid-range."]),
    "high": dict(adj=["expensive", "high-priced", "pricey", "upmarket"],
                 pp=["with high prices", "in the high price range"],
                 rel=["where prices are high"],
                 fpost=["at high prices", "at premium prices"],
                 pred=["is expensive", "has high prices", "is in the high price range", "is on the pricey side",
                       "is high-priced"],
                 sent=["Prices are high.", "Its prices are high.", "Prices there are on the high side."]),
    "less than £20": dict(adj=[], pp=["with prices under £20", "in the less than £20 price range"],
                          rel=["where meals cost less than £20"],
                          fpost=["for less than £20", "for under £20 a head"],
                          pred=["costs less than £20 per person", "has prices under £20",
                                "charges less than £20 a head", "is in the less than £20 price range"],
                          sent=["Meals cost less than £20.", "Expect to pay under £20 per person.",
                                "Prices are below £20."]),
    "£20-25": dict(adj=[], pp=["with prices of £20-25", "in the £20-25 price range"], rel=["where meals cost £20-25"],
                   fpost=["for £20-25 per person", "for between £20 and £25"],
                   pred=["costs £20-25 per person", "has prices of £20-25", "charges between £20 and £25 a head",
                         "is in the £20-25 price range"],
                   sent=["Meals cost £20-25.", "Expect to pay £20-25 per person.", "Prices range from £20 to £25."]),
    "more than £30": dict(adj=[], pp=["with prices over £30", "in the more than £30 price range"],
                          rel=["where meals cost more than £30"],
                          fpost=["for more than £30 per person", "for over £30 a head"],
                          pred=["costs more than £30 per person", "has prices above £30", "charges over £30 a head",
                                "is in the more than £30 price range"],
                          sent=["Meals cost more than £30.", "Expect to pay over £30 per person.",
                                "Prices are above £30."]),
}
_RATING = {
    "high": dict(adj=["highly rated", "well-reviewed", "top-rated"],
                 pp=["with a high customer rating", "with excellent reviews", "with a high rating"],
                 rel=["that customers rate highly"],
                 pred=["is highly rated", "has a high customer rating", "gets excellent reviews",
                       "is rated highly by customers"],
                 sent=["Customers rate it highly.", "Its customer rating is high.", "Reviews are excellent."]),
    "average": dict(adj=[], pp=["with an average customer rating", "with average reviews", "with an average rating"],
                    rel=["that customers rate as average"],
                    pred=["has an average customer rating", "gets average reviews", "is rated average by customers"],
                    sent=["Its customer rating is average.", "Customers rate it as average.", "Reviews are average."]),
    "low": dict(adj=["poorly rated", "low-rated", "badly reviewed"],
                pp=["with a low customer rating", "with poor reviews", "with a low rating"],
                rel=["that customers rate poorly"],
                pred=["has a low customer rating", "gets poor reviews", "is rated poorly by customers",
                      "is poorly rated"],
                sent=["Customers rate it poorly.", "Its customer rating is low.", "Reviews are poor."]),
}
for _n in "135":
    _RATING[f"{_n} out of 5"] = dict(
        adj=[], pp=[f"with a customer rating of {_n} out of 5", f"rated {_n} out of 5 by customers",
                    f"with a rating of {_n} out of 5"],
        rel=[f"that customers rate {_n} out of 5"],
        pred=[f"is rated {_n} out of 5 by customers", f"has a customer rating of {_n} out of 5",
              f"scores {_n} out of 5 with customers", f"has a {_n} out of 5 rating"],
        sent=[f"Customers rate it {_n} out of 5.", f"Its customer rating is {_n} out of 5.",
              f"Diners give it {_n} out of 5."])
_FAMILY = {
    "yes": dict(adj=["family-friendly", "child-friendly", "kid-friendly"],
                rel=["that welcomes families", "where children are welcome", "that is family-friendly",
                     "which is child-friendly"],
                fpost=["in a family-friendly setting", "where children are welcome"],
                pred=["is family-friendly", "welcomes families", "is child-friendly", "is kid-friendly",
                      "is suitable for children", "welcomes children"],
                sent=["Children are welcome.", "Families are welcome.", "It is a good place for families."]),
    "no": dict(adj=["adults-only"],
               rel=["that is not family-friendly", "which does not welcome children", "where children are not welcome",
                    "that is not suitable for children"],
               fpost=["in an adults-only setting", "where children are not welcome"],
               pred=["is not family-friendly", "does not welcome children", "isn't kid-friendly",
                     "is not child-friendly", "is not suitable for children", "doesn't welcome children"],
               sent=["Children are not welcome.", "It is not family-friendly.", "It is not a place for children."]),
}
_AREA = {
    "city centre": dict(pp=["in the city centre", "in the centre of the city", "in the town centre",
                            "in the centre of town"],
                        front=["In the city centre", "Located in the city centre", "In the centre of town",
                               "Situated in the city centre"],
                        pred=["is in the city centre", "is located in the city centre", "is in the centre of town",
                              "can be found in the city centre"],
                        sent=["You will find it in the city centre.", "It is located in the heart of the city."]),
    "riverside": dict(pp=["by the river", "in the riverside area", "on the riverside", "along the river"],
                      front=["By the river", "Located by the river", "On the riverside", "Down by the river"],
                      pred=["is by the river", "is located on the riverside", "is in the riverside area",
                            "sits by the river", "overlooks the river"],
                      sent=["You will find it by the river.", "It is located on the riverside."]),
}


def options(key: str, value: str, role: str) -> list[str]:
    """All the ways this generator may say `key[value]` in one syntactic role.

    Roles: adj (before the head noun), pp (after it), rel (relative clause), pred (verb phrase
    after the subject), sent (a whole sentence about "it"), front (a fronted location), fpre /
    fpost (before / after a food noun phrase: "cheap Thai food at a pub")."""
    if key == "eatType":
        return {"pred": [f"is {_an(value)}"], "sent": [f"It is {_an(value)}."],
                "fpost": [f"in {_an(value)}", f"at {_an(value)}"]}.get(role, [])
    if key == "food":
        nps = _food_nps(value)
        return {"adj": [value], "np": nps,
                "pp": [f"serving {np}" for np in nps] + [f"offering {np}" for np in nps],
                "rel": [f"that serves {np}" for np in nps] + [f"which specialises in {np}" for np in nps],
                "pred": [f"serves {np}" for np in nps] + [f"offers {np}" for np in nps]
                + [f"specialises in {np}" for np in nps],
                "sent": [f"It serves {np}." for np in nps] + [f"Its menu features {np}." for np in nps]
                + [f"You can eat {np} there." for np in nps]}.get(role, [])
    if key == "near":
        x = _near(value)
        return {"pp": [f"near {x}", f"close to {x}", f"not far from {x}", f"a short walk from {x}"],
                "fpost": [f"near {x}", f"close to {x}"],
                "front": [f"Near {x}", f"Close to {x}", f"Not far from {x}", f"Just a short walk from {x}"],
                "pred": [f"is near {x}", f"is close to {x}", f"is located near {x}", f"is not far from {x}",
                         f"is a short walk from {x}", f"is just round the corner from {x}"],
                "sent": [f"You can find it near {x}.", f"It is close to {x}."]}.get(role, [])
    table = {"priceRange": _PRICE, "customer rating": _RATING, "familyFriendly": _FAMILY, "area": _AREA}[key][value]
    out = list(table.get(role, []))
    if role == "fpre":
        out = [a for a in table.get("adj", []) if a != "adults-only"]
    if role == "fpost" and key == "area":
        out = table["pp"][:2]
    if role == "fpost" and key == "customer rating":
        out = [p for p in table["pp"] if p.startswith("rated")] or table["rel"]
    return out


# ---------------------------------------------------------------- mention checker (exported for metrics)
_FORMS = {
    ("priceRange", "cheap"): ["cheap", "inexpensive", "low-priced", "budget", "low prices", "prices are low",
                              "prices there are low"],
    ("priceRange", "moderate"): ["moderate", "moderately priced", "mid-priced", "mid-range", "reasonably priced",
                                 "reasonable prices", "prices are reasonable"],
    ("priceRange", "high"): ["expensive", "high-priced", "pricey", "upmarket", "high prices", "high price range",
                             "prices are high", "premium prices", "on the high side"],
    ("priceRange", "less than £20"): ["less than £20", "under £20", "below £20"],
    ("priceRange", "£20-25"): ["£20-25", "£20 and £25", "£20 to £25"],
    ("priceRange", "more than £30"): ["more than £30", "over £30", "above £30"],
    ("customer rating", "high"): ["highly rated", "rated highly", "rate it highly", "rate highly", "well-reviewed",
                                  "top-rated", "high customer rating", "high rating", "excellent reviews",
                                  "rating is high", "reviews are excellent"],
    ("customer rating", "average"): ["average"],
    ("customer rating", "low"): ["poorly rated", "rated poorly", "rate it poorly", "rate poorly", "low-rated",
                                 "badly reviewed", "low customer rating", "low rating", "poor reviews",
                                 "rating is low", "reviews are poor"],
    ("area", "city centre"): ["city centre", "centre of the city", "centre of town", "town centre",
                              "heart of the city"],
    ("area", "riverside"): ["riverside", "by the river", "along the river", "overlooks the river"],
    ("familyFriendly", "yes"): ["family-friendly", "child-friendly", "kid-friendly", "welcomes families",
                                "welcomes children", "children are welcome", "families are welcome",
                                "suitable for children", "place for families"],
    ("familyFriendly", "no"): ["not family-friendly", "not child-friendly", "isn't kid-friendly",
                               "not kid-friendly", "isn't family-friendly", "does not welcome children",
                               "doesn't welcome children", "children are not welcome", "not suitable for children",
                               "adults-only", "not a place for children"],
}
for _n in "135":
    _FORMS[("customer rating", f"{_n} out of 5")] = [f"{_n} out of 5"]


def surface_forms(key: str, value: str) -> list[str]:
    """Phrases that count as mentioning `key[value]` (name, eatType, food and near: the value itself)."""
    return _FORMS.get((key, value), [value])


def _has(form: str, text: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(form) + r"(?![A-Za-z0-9])", text, re.I) is not None


def mentions(key: str, value: str, text: str) -> bool:
    """Does `text` express `key[value]`? Case-insensitive whole-phrase match against surface_forms;
    familyFriendly[yes] also requires that no negative form is present."""
    if key == "familyFriendly" and value == "yes" and mentions(key, "no", text):
        return False
    return any(_has(f, text) for f in surface_forms(key, value))


def missing(rec: dict[str, str] | str, text: str) -> list[str]:
    """Keys of the input whose value `text` does not mention (empty list: all mentioned)."""
    rec = parse_input(rec) if isinstance(rec, str) else rec
    return [k for k in KEYS if k in rec and not mentions(k, rec[k], text)]


def extra(rec: dict[str, str] | str, text: str) -> list[str]:
    """`key[value]` strings that `text` mentions although the input does not say so (a wrong or absent value).
    Names are not checked."""
    rec = parse_input(rec) if isinstance(rec, str) else rec
    out = []
    for k in KEYS[1:]:
        for v in VALUES[k]:
            if rec.get(k) != v and mentions(k, v, text):
                out.append(f"{k}[{v}]")
    return out


# ---------------------------------------------------------------- realiser
def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _lower_start(s: str) -> str:
    return s[:1].lower() + s[1:] if not s.startswith(("I ", "I'")) else s


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _Realiser:
    """Turns one record into one reference, picking a sentence plan and wordings with `rng`."""

    def __init__(self, rec: dict[str, str], rng: random.Random):
        self.rec, self.rng = rec, rng
        self.name = rec["name"]
        self.said_type = False

    def pick(self, key: str, role: str) -> str:
        return self.rng.choice(options(key, self.rec[key], role))

    def can(self, key: str, role: str) -> bool:
        return bool(options(key, self.rec[key], role))

    # ---- phrases
    def noun_phrase(self, attrs: list[str], called: str | None = None, commas: bool = True) -> str:
        """'a cheap Italian pub called N by the river that welcomes families'."""
        rng = self.rng
        if "eatType" in attrs:
            head = self.rec["eatType"]
            self.said_type = True
        else:
            head = rng.choice(GENERIC_HEADS)
        adjs, food_adj, withs, pps, rels = [], None, [], [], []
        for k in attrs:
            if k == "eatType":
                continue
            if k == "food" and rng.random() < 0.6:
                food_adj = self.rec["food"]
                continue
            if k != "food" and self.can(k, "adj") and len(adjs) < 2 and rng.random() < 0.5:
                adjs.append(self.pick(k, "adj"))
                continue
            roles = [r for r in ("pp", "rel") if self.can(k, r)]
            if rels and "pp" in roles:
                roles = ["pp"]
            role = rng.choice(roles) if len(roles) > 1 and rng.random() < 0.3 else roles[0]
            phrase = self.pick(k, role)
            if role == "rel":
                rels.append(phrase)
            elif phrase.startswith("with "):
                withs.append(phrase[5:])
            else:
                pps.append(phrase)
        pre = ", ".join(adjs)
        words = " ".join(w for w in (pre, food_adj, head) if w)
        post = f" {rng.choice(['called', 'named', 'called'])} {called}" if called else ""
        if withs:
            pps.insert(rng.randrange(len(pps) + 1), "with " + _join(withs))
        for i, pp in enumerate(pps):
            post += ("," if i and commas and rng.random() < 0.4 else "") + " " + pp
        if rels:
            post += " " + " and ".join(rels)
        return _an(words) + post

    def food_phrase(self, attrs: list[str]) -> str:
        """'cheap, highly rated Thai food at a pub by the river'; attrs must include food."""
        rng = self.rng
        pre, post = [], []
        for k in attrs:
            if k == "food":
                continue
            if self.can(k, "fpre") and len(pre) < 2 and rng.random() < 0.6:
                pre.append(self.pick(k, "fpre"))
            else:
                post.append(self.pick(k, "fpost"))
        head = rng.choice(_food_nps(self.rec["food"]))
        return " ".join(w for w in (", ".join(pre), head) if w) + ("" if not post else " " + " ".join(post))

    def preds(self, attrs: list[str]) -> str:
        """'is cheap and family-friendly, serves Thai food and is near X'."""
        out, prev = [], None
        for k in sorted(attrs, key=lambda k: k != "eatType"):   # "is a pub" leads
            p = self.pick(k, "pred")
            for _ in range(5):   # say "located" at most once
                if "located" not in p or not any("located" in q for q in out):
                    break
                p = self.pick(k, "pred")
            if k == "eatType":
                self.said_type = True
            verb = "is a" if p.startswith(("is a ", "is an ")) else p.split(" ", 1)[0]
            if verb in ("is", "has") and verb == prev and self.rng.random() < 0.75:
                p = p.split(" ", 1)[1]
            out.append(p)
            prev = verb
        return _join(out)

    def fronted(self, locs: list[str]) -> str:
        first = self.pick(locs[0], "front")
        if len(locs) == 1:
            return first
        return first + self.rng.choice([" ", ", "]) + self.pick(locs[1], "pp")

    # ---- first sentences; each returns None when the plan does not fit these attributes
    def s_copula(self, a):
        return f"{self.name} is {self.noun_phrase(a)}."

    def s_preds(self, a):
        if len(a) > 3:
            return None
        return f"{self.name} {self.preds(a)}."

    def s_fronted(self, a):
        locs = [k for k in a if k in ("area", "near")]
        if not locs:
            return None
        if len(locs) == 2 and self.rng.random() < 0.5:
            locs = locs[:1]
        rest = [k for k in a if k not in locs]
        front = self.fronted(locs)
        if not rest:
            return self.rng.choice([f"{front}, you will find {self.name}.", f"{front} is {self.name}.",
                                    f"{front}, there is {self.name}."])
        plan = self.rng.randrange(3)
        if plan == 0:
            return f"{front}, {self.name} is {self.noun_phrase(rest)}."
        if plan == 1:
            return f"{front}, {self.name} {self.preds(rest)}."
        if plan == 1 and len(rest) <= 3:
            return f"{front}, {self.name} {self.preds(rest)}."
        return f"{front}, there is {self.noun_phrase(rest, called=self.name)}."

    def s_there(self, a):
        if self.rng.random() < 0.7:
            return f"There is {self.noun_phrase(a, called=self.name)}."
        return f"{self.name} is the name of {self.noun_phrase(a)}."

    def s_found(self, a):
        locs = [k for k in a if k in ("area", "near")]
        rest = [k for k in a if k not in locs]
        if not locs or not rest:
            return None
        where = " ".join(self.pick(k, "pp") for k in locs)
        if self.rng.random() < 0.5:
            return _cap(f"{self.noun_phrase(rest, called=self.name)} can be found {where}.")
        return f"You can find {self.noun_phrase(rest, called=self.name)} {where}."

    def s_try(self, a):
        if "food" in a and self.rng.random() < 0.6:
            return self.rng.choice([f"For {self.food_phrase(a)}, try {self.name}.",
                                    f"{self.name} is the place to go for {self.food_phrase(a)}."])
        np_ = self.noun_phrase(a)
        return self.rng.choice([f"If you are looking for {np_}, try {self.name}.",
                                f"If you want {np_}, {self.name} is a good choice.",
                                f"{self.name} is worth a visit if you want {np_}."])

    def s_apposition(self, a):
        if len(a) < 2:
            return None
        a = sorted(a, key=lambda k: k != "eatType")    # the venue type belongs in the apposition
        cut = self.rng.randrange(max(1, len(a) - 3), len(a))
        return f"{self.name}, {self.noun_phrase(a[:cut], commas=False)}, {self.preds(a[cut:])}."

    def s_at(self, a):
        if "food" not in a:
            return None
        rest = [k for k in a if k not in ("food", "priceRange", "area", "near", "customer rating")]
        food = [k for k in a if k not in rest]
        who = self.rng.choice(["you can enjoy", "diners can enjoy", "customers can eat", "you can get"])
        if rest:
            return f"At {self.name}, {self.noun_phrase(rest, commas=False)}, {who} {self.food_phrase(food)}."
        return f"At {self.name}, {who} {self.food_phrase(food)}."

    FIRST = ["s_copula", "s_copula", "s_preds", "s_preds", "s_fronted", "s_there", "s_found", "s_try",
             "s_apposition", "s_at"]

    # ---- later sentences
    def later(self, a):
        rng = self.rng
        if len(a) <= 2 and rng.random() < 0.4:
            sents = [self.pick(k, "sent") for k in a]
            if len(sents) == 2 and rng.random() < 0.5:
                return sents[0][:-1] + " and " + _lower_start(sents[1])
            return " ".join(sents)
        if set(a) <= {"area", "near"} and rng.random() < 0.5:
            return rng.choice(["You will find it ", "It is located "]) + " ".join(self.pick(k, "pp") for k in a) + "."
        subjects = ["It", "It"]
        if self.said_type:
            subjects += [f"The {self.rec['eatType']}", f"This {self.rec['eatType']}"]
        if rng.random() < 0.1:
            subjects = [self.name]
        return f"{rng.choice(subjects)} {self.preds(a)}."

    def realise(self) -> tuple[str, str]:
        rng = self.rng
        bias = {"eatType": -0.5, "food": -0.35, "area": -0.15, "near": -0.1, "priceRange": 0.0,
                "customer rating": 0.05, "familyFriendly": 0.15}
        attrs = sorted((k for k in KEYS[1:] if k in self.rec), key=lambda k: rng.random() + bias[k])
        n = len(attrs)
        n_sent = rng.choices([1, 2, 3], weights=[[6, 3, 0], [4, 6, 0], [2, 6, 2]][0 if n <= 3 else 1 if n <= 5 else 2])[0]
        if "eatType" in attrs:              # the venue type is said in the first sentence
            attrs.remove("eatType")
            attrs.insert(rng.randrange(2), "eatType")
        first_cut = attrs.index("eatType") + 1 if "eatType" in attrs else 1
        n_sent = min(n_sent, n - first_cut + 1)
        while True:   # at most 4 attributes besides eatType in the first sentence, 3 in later ones
            cuts = sorted(rng.sample(range(first_cut, n), n_sent - 1))
            chunks = [attrs[i:j] for i, j in zip([0] + cuts, cuts + [n])]
            if len([k for k in chunks[0] if k != "eatType"]) <= 4 and all(len(c) <= 3 for c in chunks[1:]):
                break
            n_sent = min(n_sent + 1, n - first_cut + 1)
        plans = list(self.FIRST)
        rng.shuffle(plans)
        for plan in plans:
            self.said_type = False
            first = getattr(self, plan)(chunks[0])
            if first is not None:
                break
        return " ".join([first] + [self.later(c) for c in chunks[1:]]), plan


def realise(rec: dict[str, str], rng: random.Random) -> tuple[str, str]:
    """One reference for `rec` and the name of its opening plan; every value mentioned, no other."""
    for _ in range(200):
        text, plan = _Realiser(rec, rng).realise()
        if (MIN_WORDS <= len(text.split()) <= MAX_WORDS and not missing(rec, text) and not extra(rec, text)
                and rec["name"] in text):
            return text, plan
    raise RuntimeError(f"no valid reference for {format_input(rec)}")


# ---------------------------------------------------------------- inputs and splits
def name_pools(rng: random.Random) -> dict[str, list[str]]:
    bases = [f"{a} {b}" for a in NAME_ADJ for b in NAME_NOUN] + [f"{p}'s {q}" for p in NAME_PERSON for q in NAME_PLACE]
    rng.shuffle(bases)
    names = [b if "'" in b or rng.random() < 0.4 else f"The {b}" for b in bases]
    pools, i = {}, 0
    for split in SPLITS:
        pools[split] = sorted(names[i:i + N_NAMES[split]])
        i += N_NAMES[split]
    return pools


def sample_record(name: str, rng: random.Random) -> dict[str, str]:
    ks = list(N_OTHER_WEIGHTS)
    k = rng.choices(ks, weights=[N_OTHER_WEIGHTS[x] for x in ks])[0]
    rec = {"name": name}
    for key in rng.sample(KEYS[1:], k):
        rec[key] = rng.choice(VALUES[key])
    return {key: rec[key] for key in KEYS if key in rec}


def make(seed: int = SEED) -> dict[str, list[dict]]:
    """All three splits as lists of {"id", "input", "target"} rows."""
    rng = random.Random(seed)
    pools = name_pools(rng)
    out = {}
    for split in SPLITS:
        inputs, seen = [], set()
        while len(inputs) < N_INPUTS[split]:
            rec = sample_record(rng.choice(pools[split]), rng)
            key = format_input(rec)
            if key not in seen:
                seen.add(key)
                inputs.append(rec)
        if split == "train":
            two = set(rng.sample(range(len(inputs)), TRAIN_TWO_REFS))
            n_refs = [2 if i in two else 1 for i in range(len(inputs))]
        else:
            n_refs = [rng.randint(*HELD_OUT_REFS) for _ in inputs]
        rows = []
        for i, (rec, n) in enumerate(zip(inputs, n_refs)):
            texts, plans = [], []
            for _ in range(60):            # distinct texts, preferably from distinct opening plans
                text, plan = realise(rec, rng)
                if text in texts or (plan in plans and len(plans) < len(set(_Realiser.FIRST)) and rng.random() < 0.8):
                    continue
                texts.append(text)
                plans.append(plan)
                if len(texts) == n:
                    break
            assert len(texts) == n, format_input(rec)
            src = format_input(rec)
            rows += [{"id": f"{split}-{i:04d}-{j}", "input": src, "target": t} for j, t in enumerate(texts)]
        if split == "train":
            rng.shuffle(rows)
        out[split] = rows
    return out


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = make(args.seed)
    for split, rows in splits.items():
        write_jsonl(rows, args.out / f"{split}.jsonl")
        n_inputs = len({r["input"] for r in rows})
        words = sum(len(r["target"].split()) for r in rows) / len(rows)
        print(f"{split:5s} {len(rows):5d} rows {n_inputs:5d} inputs  {words:.1f} words/target  -> "
              f"{args.out / (split + '.jsonl')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
