"""Build ptutor's synthetic English NER set (data/ner/) and its dataset card.

    python data/make_ner.py                 # rewrites data/ner/ byte-identically
    python data/make_ner.py --seed 7 --out /tmp/ner

Sentences come from news-like templates (sport, politics, business, culture) whose
slots are filled with entities built from the word lists below. Three things keep the
set from being a lookup exercise:
  * the same string takes different types in different contexts ("Jordan" is a person
    or a country, "Chelsea" a person, a district or a club, "Apple" a company or, at
    the start of a sentence, just a fruit);
  * every name pool is split: train sees only part of each pool, dev and test draw most
    of their names from the held-back part, so most test entities are new strings;
  * some templates are used only in test, so part of the test syntax is new too.
Tags are BIO over PER/ORG/LOC/MISC, one `token TAG` per line (ptutor.data.write_conll).
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ptutor.data import Sentence, write_conll  # noqa: E402

SEED = 2603
SIZES = {"train": 3000, "dev": 500, "test": 1000}
VISIBLE_SHARE = 0.6    # share of every name pool that train may use
P_HELD = 0.6           # dev/test: chance that a name piece comes from the held-back part
P_AMBIGUOUS = 0.1      # chance that a slot is filled with one of the ambiguous strings
P_TEST_TEMPLATE = 0.35  # share of test sentences written with test-only templates
TYPES = ["PER", "ORG", "LOC", "MISC"]

# ---------------------------------------------------------------- word lists
FIRST_NAMES = """Adele Agnes Aiko Alma Amara Anders Anika Arjun Astrid Ayla Bastian Beatrix Bruno
Callum Camille Carmen Cedric Clara Cyrus Dalia Damon Dario Delphine Devi Dmitri Edith Elias Elif
Emeka Enzo Esme Ewan Fatima Felix Fenna Filippo Freya Gideon Greta Gustav Hana Hamid Harriet Hector
Helga Hugo Ida Imogen Ines Ivo Jasper Joaquin Jonas Josefin Kaito Karim Katja Kenji Kofi Lars Leila
Lena Leon Linnea Lorenzo Luca Lucia Magnus Maia Malik Marek Marta Mateo Maxim Mei Mirela Nadia
Naveen Nell Nico Nils Noor Odette Olga Omar Oskar Petra Pilar Priya Quentin Rafael Rania Rasmus
Renata Rhys Rosa Ruben Saanvi Sami Selma Sergei Signe Silas Soren Stellan Tamar Tariq Thea Tobias
Tomas Ulla Valentin Vera Viktor Wanda Wen Xavier Yara Yusuf Zara Zeno Zofia Abel Bianca Cosmo Dagny
Elio Farida Gael Hilde Isak Jun Kasia Lionel Mina Nuno Orla Pavel Ronja Sven Tilde Uma Vidar Wilma
Yosef Zuri""".split()

SURNAMES = """Abernath Achterberg Aldous Amsel Arkwright Bakshi Balogun Barrow Bellweather Benedek
Birkeland Blackwood Bonnard Brandauer Castellan Chatterji Corvino Cruickshank Dalby Dunmore Eckhart
Edevane Egede Falkner Farrow Fenwick Fitzalan Galloway Garrido Geller Gorski Greaves Halvorsen
Hargreave Haverkamp Holm Hornby Ibarra Iversen Jablonski Jansky Kaminski Karlsson Kavanagh Keel
Kessler Kowal Lachance Lamberti Landry Lindqvist Lowther Lundgren Madsen Malakov Marchetti Merriman
Mowbray Nakamura Navarro Nyberg Oakley Okafor Olawale Ortega Osei Pajari Pemberton Petrakis Quaresma
Quill Radford Ramaswamy Renshaw Rinaldi Rourke Saarinen Salcedo Sandoval Scholz Sefton Sorensen
Strand Takeda Thorne Toivonen Trevino Ulloa Underhill Vance Varga Vasquez Vermeer Voss Wakefield
Waldron Wexler Whitlock Winslow Yamada Yilmaz Zamora Zeller Zielinski Ashdown Brannigan Carrow
Drummond Ellery Fairbairn Gatti Huxtable Imrie Jessop Kilbride Larkspur Mackle Novak Ostrowski
Penhallow Quintero Rasmussen Stroud Tregarth Umber Valdez Wolstenholme Yeung Zubiri Adeyemi
Bergstrom Cardenas Devereux Esposito Ferreira Grunwald Hakimi Ishikawa Jovanovic Kaur Lemaire Moreau
Nilsson Oyelaran Pereira Rautio Szabo Tanaka Uriarte Valk Weiss Yousef Zaragoza""".split()

TOWN_HEADS = """Ash Bel Brack Cal Dun Eld Fen Gar Hal Hol Ister Kel Lar Mar Nor Oster Pen Quar Ros
Sel Tarn Ul Val Wend Yar Zel Brin Cor Dray Elm Frost Glen Hart Ivel Kirk Lind Mal Orm Rav Sten""".split()
TOWN_TAILS = """by mouth holm stad wick ton field bridge haven berg dal more ness stead vik port bury
wood gate ley mere thorpe burgh combe""".split()

COUNTRIES = """Norway Chile Kenya Portugal Canada Vietnam Peru Morocco Finland Ghana Austria Japan
Brazil Poland Egypt India Mexico Sweden Turkey Greece Argentina Nigeria Ireland Denmark Spain Italy
France Germany Colombia Indonesia Hungary Iceland Estonia Tunisia Uruguay Thailand Malaysia Senegal
Croatia Belgium Switzerland Australia Ecuador Bolivia Latvia Slovenia Mongolia Nepal Cuba Jamaica
Namibia Zambia Oman Qatar Romania""".split() + ["New Zealand", "South Africa", "Sri Lanka", "Costa Rica"]

NATIONALITIES = """Norwegian Chilean Kenyan Portuguese Canadian Vietnamese Peruvian Moroccan Finnish
Ghanaian Austrian Japanese Brazilian Polish Egyptian Indian Mexican Swedish Turkish Greek Argentine
Nigerian Irish Danish Spanish Italian French German Colombian Indonesian Hungarian Icelandic Estonian
Tunisian Uruguayan Thai Malaysian Senegalese Croatian Belgian Dutch Swiss Australian Cuban Jamaican
Namibian Zambian Omani Romanian Latvian Slovenian Mongolian Nepali Georgian Jordanian""".split()

LANGUAGES = """Portuguese Swahili Finnish Polish Turkish Greek Hungarian Icelandic Estonian Japanese
Vietnamese Spanish Arabic Hindi Tamil Yoruba Basque Catalan Welsh Dutch Korean Mandarin Bengali Urdu
Amharic Zulu Quechua Tagalog Malay Latvian Czech Romanian Danish Swedish Norwegian Hausa""".split()

# invented river, lake and mountain names
WATER_NAMES = """Lysa Orva Tamsel Karro Ulme Druna Vessa Brenn Ystra Mirel Solvy Aune Pella Riska
Ganne Ebbe Toska Varne Lumme Hesk Idra Nolle Sarn Quenna Febb Ormsa Dalla Witta Kessa Runa Aldra
Ovie Brisa Tavel Yssel Merra Calda Sunne Vigra Nessa""".split()

BRANDS = """Velto Orvik Nimbra Qalo Zentra Lumio Corvex Braxa Tessly Marlo Kinno Vantor Pyxa Drello
Solin Fennix Haldor Ixora Jorvo Kestra Lumen Mavra Nordo Oxley Prisma Quanta Rivo Stella Tolvi Ulix
Vexa Wyra Xandr Yolo Zirco Altra Borea Cirra Dyna Elvo""".split()
MODELS = """T3 X90 S7 Aero Mini Pro Go Lite One Max Neo Air Flex K2 R5 Z1 V8 Duo Nova Edge""".split()

SECTORS = """Logistics Energy Mining Holdings Pharmaceuticals Telecom Foods Shipping Airlines Motors
Insurance Capital Robotics Textiles Steel Media Brewing Software Chemicals Construction""".split()
CORP_SUFFIXES = ["Group", "Corporation", "Holdings", "Inc", "plc", "AG"]
CLUB_FORMS = ["{} United", "{} Rovers", "{} Athletic", "FC {}", "Sporting {}", "{} City", "{} Wanderers"]
PAPER_WORDS = ["Herald", "Courier", "Gazette", "Tribune", "Observer", "Chronicle", "Express"]
PARTY_ADJ = """National Liberal Progressive Green Social United Democratic Agrarian Reform Civic
Popular Federal Citizens Labour Centre""".split()
PARTY_NOUNS = """Alliance Union Movement Front Renewal Forum Coalition League Party Congress""".split()
GOV_FORMS = ["Ministry of Finance", "Ministry of Health", "Interior Ministry", "Foreign Ministry",
             "Environment Agency", "{nat} Football Federation", "{nat} Meteorological Institute",
             "{town} City Council", "{nat} Olympic Committee", "{nat} Coast Guard", "{nat} Rail"]
UNI_FORMS = ["University of {}", "{} Institute of Technology", "{} School of Economics", "{} University"]
EVENT_FORMS = ["{town} Open", "{town} Marathon", "{town} Film Festival", "{town} Jazz Festival",
               "{town} Book Fair", "{nat} Grand Prix", "{nat} Open", "World {sport} Championships",
               "Tour of {country}", "{town} Biennale", "{town} Games"]
SPORTS = ["Rowing", "Athletics", "Cycling", "Judo", "Fencing", "Archery", "Curling", "Badminton", "Swimming"]
AWARD_FORMS = ["{sur} Prize", "{sur} Medal", "{town} Prize", "Golden {thing}", "{nat} Book Award"]
AWARD_THINGS = """Lantern Quill Compass Anchor Lyre Harp Oak Feather Key Bell Arrow Crown""".split()

# Strings whose type depends on context (checked: each occurs with >= 2 types in train).
AMBIGUOUS = ["Jordan", "Washington", "Paris", "Ford", "Apple", "Amazon", "Victoria", "Chelsea",
             "Lincoln", "Georgia", "Florence", "Austin", "Sydney", "Milan", "Orange", "Shell",
             "Kent", "Dallas", "Madison", "Santiago"]
AMB_FIRST = ["Jordan", "Paris", "Victoria", "Chelsea", "Georgia", "Florence", "Austin", "Sydney",
             "Madison", "Milan", "Santiago"]
AMB_SURNAMES = ["Jordan", "Washington", "Ford", "Lincoln", "Kent", "Austin", "Dallas"]
AMB_PLACES = ["Paris", "Washington", "Victoria", "Chelsea", "Lincoln", "Florence", "Austin", "Sydney",
              "Madison", "Milan", "Santiago", "Dallas", "Kent", "Orange"]
AMB_COUNTRIES = ["Jordan", "Georgia"]
AMB_COMPANIES = ["Apple", "Amazon", "Ford", "Shell", "Orange"]
AMB_CLUBS = ["Chelsea", "Milan"]

DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()
WORDNUMS = "two three four five six seven eight nine".split()
ROLES = ["chairman", "chief executive", "finance director", "president", "managing director", "treasurer"]

# ---------------------------------------------------------------- templates
# Space-separated tokens; {SLOT} tokens are filled by Filler methods of the same name.
SHARED_TEMPLATES = [
    # sport
    "{PER} scored twice as {CLUB} beat {CLUB} {SCORE} in {CITY} on {DAY} .",
    "{CLUB} manager {PER} said the players had deserved at least a draw .",
    "{NAT} striker {PER} has joined {CLUB} on a {YEARS} contract .",
    "{PER} of {COUNTRY} won the {EVENT} on {DAY} , finishing {NUM} seconds ahead of {PER} .",
    "{PER} ( {COUNTRY} ) beat {PER} ( {COUNTRY} ) {SET} {SET}",
    "{CLUB} have signed {NAT} goalkeeper {PER} from {CLUB} for a reported {MONEY} .",
    "Rain delayed the third round in {CITY} , where {PER} leads by {NUM} shots .",
    "{SUR} , who missed last season with a knee injury , is expected to start for {CLUB} on {DAY} .",
    "The {EVENT} returns to {CITY} in {MONTH} for the first time since {YEAR} .",
    "{PER} and {PER} were named in the {NAT} squad for the {EVENT} .",
    "{PER} set a {NAT} record of {TIME} seconds in the heats in {CITY} .",
    "Defending champion {PER} withdrew from the {EVENT} with a shoulder injury , organisers said .",
    # politics
    "{NAT} prime minister {PER} arrived in {CITY} on {DAY} for talks with president {PER} .",
    "The {PARTY} won {NUM} of the {NUM} seats in {LOC} , election officials said .",
    "{PER} , a spokesman for the {GOV} , declined to comment on the report .",
    "Talks between {COUNTRY} and {COUNTRY} on fishing rights broke down in {CITY} after {WORDNUM} days .",
    "Voters in {LOC} go to the polls on {DAY} to choose a successor to {PER} .",
    "The {GOV} said {BIGNUM} people had been moved from villages near the river {RIVER} .",
    "Foreign ministers from {COUNTRY} , {COUNTRY} and {COUNTRY} will meet in {CITY} next {MONTH} .",
    "Opposition leader {PER} accused the {PARTY} of ignoring farmers in {LOC} .",
    "{PAPER} , a {LANG} daily , reported that {PER} would resign as finance minister .",
    "The {NAT} parliament voted {NUM} to {NUM} to approve the treaty with {COUNTRY} .",
    # business
    "Shares in {ORG} rose {PCT} percent after the company reported higher profits .",
    "{ORG} has agreed to buy {ORG} for {MONEY} , the companies said on {DAY} .",
    "{PER} , chief executive of {ORG} , told reporters in {CITY} that sales would recover .",
    "{ORG} will open a factory in {LOC} , creating {BIGNUM} jobs .",
    "The {NAT} group {ORG} said first-half profit fell {PCT} percent .",
    "{ORG} launched the {PROD} in {CITY} on {DAY} , priced at {MONEY} .",
    "Analysts at {ORG} expect {COUNTRY} 's economy to grow {PCT} percent this year .",
    "{PER} will step down as {ROLE} of {ORG} in {MONTH} , the board said .",
    "Workers at {ORG} 's plant in {CITY} voted to strike over pay on {DAY} .",
    "{ORG} reported a net loss of {MONEY} for the {QUARTER} quarter , blaming weak demand in {COUNTRY} .",
    "Sales of the {PROD} have passed {BIGNUM} units since its launch in {MONTH} .",
    "{ORG} and {ORG} will combine their operations in {LOC} , cutting {BIGNUM} jobs .",
    # culture
    "{PER} won the {AWARD} for a novel about a fishing family in {LOC} .",
    "The {EVENT} opened in {CITY} on {DAY} , with {NAT} film director {PER} among the guests .",
    "{PER} 's debut album was recorded in {CITY} and released by {ORG} in {MONTH} .",
    "A gallery in {CITY} will show {NUM} paintings by {PER} , the {NAT} artist who died in {YEAR} .",
    "{PER} , who writes in {LANG} , was awarded the {AWARD} on {DAY} .",
    "Critics at the {PAPER} praised the new staging of the opera by {PER} .",
    "The {NAT} novelist {PER} will read from a new book at the {EVENT} .",
    "Researchers at the {UNI} translated the letters of {PER} from {LANG} into {LANG} .",
    "Tickets for the {EVENT} in {CITY} sold out within {NUM} minutes .",
    # general news
    "Police in {CITY} said {NUM} people were injured when a bus overturned near {LOC} .",
    "Heavy rain caused flooding along the river {RIVER} on {DAY} , forcing the closure of roads around {CITY} .",
    "Flights between {CITY} and {CITY} were cancelled because of fog , {ORG} said .",
    "A {NAT} climber was rescued from {MOUNTAIN} after {WORDNUM} days .",
    "Scientists at the {UNI} said the {NAT} study followed {BIGNUM} patients for {WORDNUM} years .",
    "Speaking in {LANG} , {PER} thanked fans in {CITY} for their support .",
    "{PER} , {AGE} , was appointed {ROLE} of {ORG} on {DAY} .",
    # capitalised common nouns at the start, lower-case look-alikes inside
    "Apple growers in {LOC} expect a smaller harvest after a dry {MONTH} .",
    "Orange groves south of {CITY} were badly damaged by frost on {DAY} .",
    "Shell companies registered in {COUNTRY} will face new reporting rules , the {GOV} said .",
    "The price of an apple at the market in {CITY} has doubled since {YEAR} .",
    # short, headline-like
    "{CLUB} sacked coach {PER} on {DAY} .",
    "{PER} wins the {EVENT} .",
    "{ORG} shares slipped {PCT} percent .",
    "{COUNTRY} expels {NAT} diplomat .",
    "Rain stopped play in {CITY} .",
    # long
    "{PER} , who coached {CLUB} for {WORDNUM} seasons before moving to {COUNTRY} , said on {DAY} that a return to {CITY} was unlikely unless the club changed its owners .",
    "The {GOV} warned on {DAY} that the river {RIVER} could burst its banks near {CITY} and {CITY} , and told residents of {LOC} to prepare to leave their homes .",
    "In a statement issued in {CITY} , {ORG} said it had received an offer of {MONEY} from {ORG} but that its board , led by {PER} , had not yet reached a decision .",
    "{PER} , the {NAT} author whose first novel was translated into {LANG} last year , will receive the {AWARD} at a ceremony in {CITY} in {MONTH} .",
    "After {WORDNUM} days of talks in {CITY} , negotiators from {COUNTRY} and {COUNTRY} agreed to meet again in {MONTH} , a spokeswoman for the {GOV} said .",
    # no entities
    "Shares fell {PCT} percent in early trading on {DAY} as investors waited for new figures .",
    "Inflation is expected to fall below {PCT} percent by {MONTH} , the central bank said .",
    "Officials said the bridge would stay closed until {MONTH} while engineers inspected the damage .",
    "Temperatures reached {DEGREES} degrees on {DAY} , the highest reading since {YEAR} .",
]

TEST_ONLY_TEMPLATES = [
    "In {CITY} , {BIGNUM} people attended a rally organised by the {PARTY} .",
    "{ORG} , which is based in {CITY} , denied breaking {NAT} competition rules .",
    "According to the {PAPER} , {PER} turned down an offer from {CLUB} worth {MONEY} .",
    "It was the first {NAT} win at the {EVENT} since {PER} triumphed in {YEAR} .",
    "Asked about {ORG} , {PER} said only that negotiations were continuing .",
    "{PER} , {PER} and {PER} are on the shortlist for this year 's {AWARD} .",
    "Having left {COUNTRY} as a child , {PER} now teaches {LANG} at the {UNI} .",
    "Not since {YEAR} has a team from {COUNTRY} reached the final of the {EVENT} .",
    "Neither {ORG} nor {ORG} would say how many staff in {LOC} could lose their jobs .",
    "Fans of {CLUB} waited outside the stadium in {CITY} until {SUR} appeared .",
    "Whether {PER} stays at {CLUB} beyond {MONTH} remains unclear , sources in {CITY} said .",
    "Once a small fishing port , {CITY} now hosts the {EVENT} every {MONTH} .",
    "Backed by {ORG} , the {NAT} start-up behind the {PROD} raised {MONEY} on {DAY} .",
    "{PER} joins {CLUB} .",
    "Although {ORG} had promised to keep its factory in {LOC} open until {YEAR} , {PER} , the union leader , said workers were told on {DAY} that it would close within {WORDNUM} months .",
    "Nothing has been decided yet , a senior official said late on {DAY} .",
]


# ---------------------------------------------------------------- filling slots
def ent(text: str, typ: str) -> list[tuple[str, str]]:
    return [(t, ("B-" if i == 0 else "I-") + typ) for i, t in enumerate(text.split())]


def lit(text: str) -> list[tuple[str, str]]:
    return [(t, "O") for t in text.split()]


class Pools:
    """Every name list, each split into a part train may use and a held-back part."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        towns = sorted({h + t for h in TOWN_HEADS for t in TOWN_TAILS})
        parties = [f"{a} {n}" for a in PARTY_ADJ for n in PARTY_NOUNS if a != n]
        lists = {"first": FIRST_NAMES, "sur": SURNAMES, "town": towns, "country": COUNTRIES,
                 "nat": NATIONALITIES, "lang": LANGUAGES, "water": WATER_NAMES, "brand": BRANDS,
                 "party": parties, "thing": AWARD_THINGS}
        self.visible, self.held = {}, {}
        for name, items in lists.items():
            items = list(dict.fromkeys(items))
            rng.shuffle(items)
            k = round(len(items) * VISIBLE_SHARE)
            self.visible[name], self.held[name] = items[:k], items[k:]


class Filler:
    """Fills template slots; in dev/test (`held=True`) most name pieces are held-back ones."""

    def __init__(self, pools: Pools, rng: random.Random, held: bool):
        self.pools, self.rng, self.held = pools, rng, held

    def pick(self, pool: str) -> str:
        if self.held and self.rng.random() < P_HELD:
            return self.rng.choice(self.pools.held[pool])
        return self.rng.choice(self.pools.visible[pool])

    def amb(self) -> bool:
        return self.rng.random() < P_AMBIGUOUS

    def town(self) -> str:
        """A town name, sometimes an ambiguous one (also used inside ORG and MISC names)."""
        return self.rng.choice(AMB_PLACES) if self.amb() else self.pick("town")

    # entity slots
    def PER(self):
        r = self.rng.random()
        if r < P_AMBIGUOUS / 2:
            return ent(f"{self.rng.choice(AMB_FIRST)} {self.pick('sur')}", "PER")
        if r < P_AMBIGUOUS:
            return ent(f"{self.pick('first')} {self.rng.choice(AMB_SURNAMES)}", "PER")
        if r < P_AMBIGUOUS + 0.06:  # a middle initial now and then
            return ent(f"{self.pick('first')} {self.rng.choice('ABCDEFGHJKLMNPRSTW')}. {self.pick('sur')}", "PER")
        return ent(f"{self.pick('first')} {self.pick('sur')}", "PER")

    def SUR(self):
        return ent(self.rng.choice(AMB_SURNAMES) if self.amb() else self.pick("sur"), "PER")

    def ORG(self):
        if self.amb():
            return ent(self.rng.choice(AMB_COMPANIES), "ORG")
        form = self.rng.randrange(6)
        if form == 0:
            return ent(f"{self.pick('sur')} {self.rng.choice(SECTORS)}", "ORG")
        if form == 1:
            return ent(f"{self.town()} {self.rng.choice(SECTORS)} {self.rng.choice(CORP_SUFFIXES)}", "ORG")
        if form == 2:
            return ent(self.pick("brand"), "ORG")
        if form == 3:
            letters = "ABCDEFGHIKLMNPRSTVWZ"
            return ent("".join(self.rng.choice(letters) for _ in range(self.rng.choice([2, 3, 3, 4]))), "ORG")
        if form == 4:
            return ent(f"{self.pick('sur')} & {self.pick('sur')}", "ORG")
        return ent(f"{self.pick('brand')} {self.rng.choice(SECTORS)}", "ORG")

    def CLUB(self):
        if self.amb():
            return ent(self.rng.choice(AMB_CLUBS), "ORG")
        return ent(self.rng.choice(CLUB_FORMS).format(self.town()), "ORG")

    def GOV(self):
        form = self.rng.choice(GOV_FORMS)
        return ent(form.format(nat=self.pick("nat"), town=self.town()), "ORG")

    def PARTY(self):
        return ent(self.pick("party"), "ORG")

    def PAPER(self):
        return ent(f"{self.town()} {self.rng.choice(PAPER_WORDS)}", "ORG")

    def UNI(self):
        return ent(self.rng.choice(UNI_FORMS).format(self.town()), "ORG")

    def CITY(self):
        return ent(self.town(), "LOC")

    def COUNTRY(self):
        return ent(self.rng.choice(AMB_COUNTRIES) if self.amb() else self.pick("country"), "LOC")

    def RIVER(self):
        return ent("Amazon" if self.amb() else self.pick("water"), "LOC")

    def MOUNTAIN(self):
        return ent(f"Mount {self.pick('water')}", "LOC")

    def LOC(self):
        r = self.rng.random()
        if r < 0.08:
            return lit("the") + ent("Amazon", "LOC")
        if r < 0.40:
            return self.COUNTRY()
        if r < 0.55:
            return ent(f"Lake {self.pick('water')}", "LOC")
        if r < 0.65:
            return ent(f"{self.rng.choice(['North', 'South', 'East', 'West', 'Upper'])} {self.pick('town')}", "LOC")
        return self.CITY()

    def NAT(self):
        return ent(self.pick("nat"), "MISC")

    def LANG(self):
        return ent(self.pick("lang"), "MISC")

    def EVENT(self):
        form = self.rng.choice(EVENT_FORMS)
        return ent(form.format(town=self.town(), nat=self.pick("nat"), sport=self.rng.choice(SPORTS),
                               country=self.pick("country")), "MISC")

    def PROD(self):
        return ent(f"{self.pick('brand')} {self.rng.choice(MODELS)}", "MISC")

    def AWARD(self):
        form = self.rng.choice(AWARD_FORMS)
        sur = self.rng.choice(AMB_SURNAMES) if self.amb() else self.pick("sur")
        return ent(form.format(sur=sur, town=self.town(), thing=self.pick("thing"), nat=self.pick("nat")), "MISC")

    # non-entity slots
    def DAY(self):
        return lit(self.rng.choice(DAYS))

    def MONTH(self):
        return lit(self.rng.choice(MONTHS))

    def YEAR(self):
        return lit(str(self.rng.randint(1950, 2023)))

    def NUM(self):
        return lit(str(self.rng.randint(2, 95)))

    def DEGREES(self):
        return lit(str(self.rng.randint(31, 47)))

    def AGE(self):
        return lit(str(self.rng.randint(28, 79)))

    def WORDNUM(self):
        return lit(self.rng.choice(WORDNUMS))

    def YEARS(self):
        return lit(self.rng.choice(WORDNUMS[:4]) + "-year")

    def BIGNUM(self):
        return lit(f"{self.rng.randint(1, 95) * 100 + self.rng.choice([0, 1000, 10000]):,}")

    def PCT(self):
        return lit(f"{self.rng.randint(1, 129) / 10:.1f}")

    def TIME(self):
        return lit(f"{self.rng.randint(950, 4999) / 100:.2f}")

    def MONEY(self):
        if self.rng.random() < 0.7:
            amount, unit = str(self.rng.randint(2, 900)), "million"
        else:
            amount, unit = f"{self.rng.randint(11, 99) / 10:.1f}", "billion"
        if self.rng.random() < 0.5:
            return lit(f"$ {amount} {unit}")
        return lit(f"{amount} {unit} {self.rng.choice(['euros', 'pounds', 'dollars'])}")

    def SCORE(self):
        a, b = self.rng.randint(1, 5), self.rng.randint(0, 4)
        return lit(f"{max(a, b)}-{min(a, b)}")

    def SET(self):
        return lit(self.rng.choice(["6-4", "6-3", "7-5", "6-2", "7-6", "6-1", "6-0"]))

    def ROLE(self):
        return lit(self.rng.choice(ROLES))

    def QUARTER(self):
        return lit(self.rng.choice(["first", "second", "third", "fourth"]))


def fill(template: str, filler: Filler) -> Sentence:
    pairs: list[tuple[str, str]] = []
    for tok in template.split():
        if tok.startswith("{") and tok.endswith("}"):
            pairs += getattr(filler, tok[1:-1])()
        else:
            pairs.append((tok, "O"))
    if pairs[0][1] == "O" and pairs[0][0][0].islower():
        pairs[0] = (pairs[0][0][0].upper() + pairs[0][0][1:], "O")
    return Sentence([t for t, _ in pairs], [g for _, g in pairs])


# ---------------------------------------------------------------- building and measuring
def build(seed: int = SEED) -> dict[str, list[Sentence]]:
    """The three splits; train first so dev/test can avoid repeating its sentences."""
    pools = Pools(seed)
    seen: set[str] = set()
    splits = {}
    for k, split in enumerate(SIZES):
        rng = random.Random(seed * 100 + k + 1)
        filler = Filler(pools, rng, held=split != "train")
        out = []
        while len(out) < SIZES[split]:
            if split == "test" and rng.random() < P_TEST_TEMPLATE:
                template = rng.choice(TEST_ONLY_TEMPLATES)
            else:
                template = rng.choice(SHARED_TEMPLATES)
            s = fill(template, filler)
            key = " ".join(s.tokens)
            if key in seen:
                continue
            seen.add(key)
            out.append(s)
        splits[split] = out
    return splits


def spans(s: Sentence) -> list[tuple[str, int, int]]:
    """(type, start, end) of each entity, end exclusive."""
    out, start, typ = [], None, None
    for i, tag in enumerate(s.tags + ["O"]):
        if start is not None and not tag.startswith("I-"):
            out.append((typ, start, i))
            start = None
        if tag.startswith("B-"):
            start, typ = i, tag[2:]
    return out


def entity_strings(sentences: list[Sentence]) -> list[tuple[str, str]]:
    return [(typ, " ".join(s.tokens[a:b])) for s in sentences for typ, a, b in spans(s)]


def ambiguity_table(sentences: list[Sentence]) -> dict[str, Counter]:
    """For each ambiguous string, how often each of its tokens is PER/ORG/LOC/MISC/O."""
    table = {w: Counter() for w in AMBIGUOUS}
    for s in sentences:
        for tok, tag in zip(s.tokens, s.tags):
            if tok in table:
                table[tok][tag[2:] if tag != "O" else "O"] += 1
    return table


def lookup_baseline_f1(train: list[Sentence], test: list[Sentence]) -> float:
    """Tag every test token with its most frequent train tag (O if unseen); seqeval F1."""
    from seqeval.metrics import f1_score

    counts: dict[str, Counter] = {}
    for s in train:
        for tok, tag in zip(s.tokens, s.tags):
            counts.setdefault(tok, Counter())[tag] += 1
    pred = [[counts[t].most_common(1)[0][0] if t in counts else "O" for t in s.tokens] for s in test]
    return float(f1_score([s.tags for s in test], pred))


def stats(splits: dict[str, list[Sentence]]) -> dict:
    train_strings = {text for _, text in entity_strings(splits["train"])}
    out = {"splits": {}, "unseen": {}}
    for split, sents in splits.items():
        ents = entity_strings(sents)
        lengths = [len(s.tokens) for s in sents]
        out["splits"][split] = {
            "sentences": len(sents), "tokens": sum(lengths), "entities": len(ents),
            **{t: sum(1 for typ, _ in ents if typ == t) for t in TYPES},
            "no_entity": sum(1 for s in sents if not spans(s)),
            "min_len": min(lengths), "max_len": max(lengths),
            "in_8_35": sum(1 for n in lengths if 8 <= n <= 35) / len(lengths),
        }
        if split != "train":
            unique = sorted({text for _, text in ents})
            out["unseen"][split] = {
                "mentions": sum(1 for _, text in ents if text not in train_strings) / len(ents),
                "unique": sum(1 for text in unique if text not in train_strings) / len(unique),
            }
    out["ambiguity"] = ambiguity_table(splits["train"])
    out["ambiguity_test"] = ambiguity_table(splits["test"])
    out["lookup_f1"] = lookup_baseline_f1(splits["train"], splits["test"])
    return out


def card(st: dict, seed: int) -> str:
    rows = "\n".join(
        f"| {split} | {d['sentences']} | {d['tokens']} | {d['entities']} | {d['PER']} | {d['ORG']} | "
        f"{d['LOC']} | {d['MISC']} | {d['no_entity']} | {d['min_len']}-{d['max_len']} |"
        for split, d in st["splits"].items())
    amb_rows = "\n".join(
        f"| {w} | " + " | ".join(str(st["ambiguity"][w][t]) for t in TYPES + ["O"]) + " | "
        + " | ".join(str(st["ambiguity_test"][w][t]) for t in TYPES + ["O"]) + " |"
        for w in AMBIGUOUS)
    u = st["unseen"]
    return f"""# ptutor-ner: a small synthetic English NER set

**A demonstration set.** The book generated it so that demonstrations run in seconds and tests are exact; no reading, guide
row or verdict of the book rests on it (`book/protocol.md`): the comparisons stand on the real WNUT-17 and E2E data.

Sentences in the style of short news items (sport, politics, business, culture), tagged
with BIO tags over four types: PER (people), ORG (companies, clubs, parties, newspapers,
universities, public bodies), LOC (countries, towns, districts, rivers, lakes, mountains)
and MISC (nationalities, languages, events, products, awards). Written for the ptutor book,
whose NER chapters need a data set that ships with the repository, loads offline in a
second and still needs a model to generalise.

## Files and format

`train.conll`, `dev.conll`, `test.conll`: one `token TAG` per line, a blank line between
sentences, UTF-8. Tokens contain no white space; punctuation and the possessive `'s` are
separate tokens (CoNLL-2003 style). Read with `ptutor.data.read_conll(path)`.

| split | sentences | tokens | entities | PER | ORG | LOC | MISC | no entity | length |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Sentence lengths (tokens) in the range 8-35: {min(d['in_8_35'] for d in st['splits'].values()):.1%} or more in every split.

## What makes it a real task

- **New names.** Every name list (first names, surnames, towns, countries, nationalities,
  languages, rivers and lakes, brands, parties, ...) is split with the seed: train only
  sees {VISIBLE_SHARE:.0%} of each list, while dev and test take a name piece from the
  held-back part {P_HELD:.0%} of the time. Names are built combinatorially (first name +
  surname, town + "United", surname + "Prize", brand + model ...), so even seen pieces
  give new strings. Entity mentions whose exact string never occurs as an entity in train:
  test **{u['test']['mentions']:.1%}** of mentions ({u['test']['unique']:.1%} of distinct strings),
  dev {u['dev']['mentions']:.1%} of mentions.
- **Type depends on context.** The same token is a person, place, organisation or part
  of an event/award name depending on its neighbours: a town is LOC on its own, ORG in
  "Kelmouth United" or "Kelmouth Herald", MISC in "Kelmouth Marathon"; a surname is PER
  on its own, ORG in "Voss Logistics" and MISC in "Voss Prize". On top of that, the strings
  below are mixed in on purpose. Counts are tokens by the type of the entity they belong to
  (O: not an entity, e.g. "Apple growers ..." or "Shell companies ..." at the start of a sentence):

| string | train PER | ORG | LOC | MISC | O | test PER | ORG | LOC | MISC | O |
|---|---|---|---|---|---|---|---|---|---|---|
{amb_rows}

- **New syntax.** {len(SHARED_TEMPLATES)} templates are shared by all splits and
  {len(TEST_ONLY_TEMPLATES)} more are used only in test (about {P_TEST_TEMPLATE:.0%} of test sentences).
  Dev draws its names like test but uses only the shared templates.
  Capitalised words that are not entities (days, months, sentence-initial words) are common.
- **A lookup table is not enough.** Tagging every test token with its most frequent tag
  in train (O for unseen tokens) gives entity-level F1 **{st['lookup_f1']:.3f}** (seqeval) on test.

## Regenerate

    python data/make_ner.py            # seed {seed}; rewrites data/ner/ byte-identically
    python data/make_ner.py --seed 7 --out /tmp/ner   # another draw elsewhere

The script is deterministic (Python's `random.Random` with a fixed seed, no set or hash
order involved); `tests/test_datasets.py` checks that a rerun reproduces these files.

## Intended use

Teaching and quick experiments: comparing prompt tuning, P-Tuning, LoRA and full
fine-tuning for token classification on a CPU in minutes, and showing the gap between
seen and unseen entities.

## Limitations

- Synthetic and templated: {len(SHARED_TEMPLATES) + len(TEST_ONLY_TEMPLATES)} sentence patterns, no real discourse, no
  document context, little variation in entity length. Scores here say little about
  scores on real text.
- English only. The names mix languages but the sentences are English news style.
- Most people, towns, companies, events and products are invented; real countries,
  languages and a few real companies and cities appear. Every sentence is fictional and
  states no fact about any real person or organisation.
- Annotation follows one simple convention (determiners such as "the" are outside
  entities; "river" is outside a river's name, "Lake" and "Mount" are inside), which
  differs in places from CoNLL-2003.
- Not a substitute for CoNLL-2003 or any human-annotated benchmark; report results on
  those for anything beyond teaching.

## License

Generated by ptutor's own code (`data/make_ner.py`) from word lists written for this
project. Data and generator: CC0 1.0 (public domain dedication); the rest of the
repository is Apache-2.0.
"""


def report(st: dict, seed: int) -> str:
    lines = [f"seed {seed}"]
    for split, d in st["splits"].items():
        per_type = " ".join(f"{t}={d[t]}" for t in TYPES)
        lines.append(f"{split:5s}: {d['sentences']} sentences, {d['tokens']} tokens, {d['entities']} entities "
                     f"({per_type}), {d['no_entity']} without entities, length {d['min_len']}-{d['max_len']}, "
                     f"{d['in_8_35']:.1%} in 8-35")
    for split, u in st["unseen"].items():
        lines.append(f"{split} entity mentions unseen in train: {u['mentions']:.1%} "
                     f"(distinct strings: {u['unique']:.1%})")
    lines.append("ambiguous strings in train (PER/ORG/LOC/MISC/O): " + ", ".join(
        f"{w} {'/'.join(str(st['ambiguity'][w][t]) for t in TYPES + ['O'])}" for w in AMBIGUOUS))
    lines.append(f"train-lookup baseline entity F1 on test: {st['lookup_f1']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "ner"))
    args = ap.parse_args(argv)
    splits = build(args.seed)
    out = Path(args.out)
    for split, sents in splits.items():
        write_conll(sents, out / f"{split}.conll")
    st = stats(splits)
    for w, c in st["ambiguity"].items():
        if len(c) < 2:
            raise SystemExit(f"ambiguous string {w!r} has only types {dict(c)} in train; change the seed or lists")
    (out / "README.md").write_text(card(st, args.seed), encoding="utf-8")
    print(report(st, args.seed))
    print(f"wrote {out}/train.conll, dev.conll, test.conll, README.md")


if __name__ == "__main__":
    main()
