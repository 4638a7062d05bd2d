"""A deterministic generator of an omnichannel retailer's whole history.

The demo retailer, "Larder & Loom", sells wine, groceries, beauty, apparel, home, kitchen and
toys through 20 shops in London, Manchester, Paris, Lyon and Berlin, a website, an app and a
call centre. :class:`DemoRetailer` yields its stores, its catalogue and, one customer at a time,
each customer's record and whole history as the plain records of :mod:`rapport.demo.records`.

Conventions
-----------
* **Currency**: every price and order is in ``"EUR"``, even in the London and Manchester shops,
  so that totals add up without exchange rates. Amounts are integer cents.
* **Time**: every datetime is timezone-aware UTC and lies inside ``[start 00:00, end 23:59:59]``.
  Shop hours and evening peaks are modelled in local time with a rough offset (GMT/CET plus one
  hour from April to October), which is close enough for demo patterns.
* **History closes cleanly**: orders stop four days before ``end`` (click-and-collect orders are
  collected inside the window) and a parcel that would arrive after ``end`` arrives on its last
  day, so every shipment settles inside the window; browsing and shop visits continue to
  ``end``. Returns, reviews and survey answers that would fall after ``end`` have simply not
  happened yet and are left out. Product views
  from before the customer signed up were anonymous and are not part of their history.
* **Stores**: shops open 09:00-20:00 Monday to Saturday; London and Manchester also 11:00-17:00
  on Sundays, while French and German shops are ``"closed"`` on Sundays (that literal string is
  the ``opening_hours`` value). The online warehouse ``"web"`` is ``"00:00-24:00"`` every day.

The model, briefly
------------------
* **Catalogue**: subcategories ("Wine/Red", "Apparel/Shoes", ...) hold product kinds with a
  log-normal price around a realistic median; costs are 40-75 % of price. Popularity is
  Zipf-like within a subcategory. Seasonal kinds (Christmas, summer, winter) sell only in season.
* **Customers** live around a city centre, speak its language, and prefer the nearest shop. Each
  has latent traits: an order count from a heavy-tailed mixture (a share never buys, most buy
  once or twice, a few percent buy 10-60 times), a favourite channel, favourite
  categories, a habit of re-buying consumables, a return propensity (log-normal, so a few
  customers make most returns), and how willing they are to write reviews and answer surveys.
* **Orders** are spread over the customer's active time with monthly (November-December peak),
  weekday and hour-of-day weights per channel. Shipped orders get a carrier, a promise of 2-5
  days and an outcome (on time, late, or, about 1 %, never delivered); carriers run late more
  often in the Christmas peak and three times as often in the window's last three weeks (a bad
  patch the service team is dealing with); lateness raises returns and lowers ratings and NPS.

Determinism and memory
----------------------
Each customer draws from its own ``random.Random`` seeded by the string
``f"{seed}:customer:{index}"`` (string seeds are hashed with SHA-512, not the salted ``hash()``),
and the catalogue from ``f"{seed}:catalogue"``. A customer's history therefore depends only on
``(seed, index, catalogue)``: the same arguments give the same records in every process, and
:meth:`DemoRetailer.histories` streams a million customers holding one history at a time.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar

from rapport.demo.records import (
    CHANNELS,
    CustomerHistory,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    ProductViewRecord,
    ReturnRecord,
    ReviewRecord,
    StoreRecord,
    StoreVisitRecord,
    SurveyAnswerRecord,
)

__all__ = ["CURRENCY", "DemoRetailer"]

CURRENCY = "EUR"
WEB_STORE_ID = "web"
CONSENT_SHARES = {
    "analytics": 0.75,
    "personalization": 0.60,
    "marketing_email": 0.45,
    "marketing_push": 0.25,
    "location": 0.30,
}
DAY = 86_400
HOUR = 3_600
# Orders stop this many days before `end`, so click-and-collect orders are collected inside the
# window. A parcel that would arrive after the window arrives on its last day instead: history
# has no parcels in transit (an order imported without a delivery is one that never came).
_ORDER_CUTOFF_DAYS = 4
# Sign-ups stop this many days before `end`, so every customer has time to order.
_SIGNUP_CUTOFF_DAYS = 30
_MIN_WINDOW_DAYS = 60

T = TypeVar("T")
_bisect_right = bisect.bisect_right  # bound once: pick() runs tens of times per customer


class _Picker(Generic[T]):
    """Weighted choice by bisecting cumulative weights: built once, then one ``random()`` and
    one ``bisect`` per draw (``random.choices`` re-accumulates or allocates on every call)."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("a picker needs as many positive weights as items")
        self._items = tuple(items)
        self._cum = list(itertools.accumulate(weights))
        self._total = self._cum[-1]
        if self._total <= 0:
            raise ValueError("a picker needs a positive total weight")

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> _Picker[T]:
        return cls([item for item, _ in pairs], [weight for _, weight in pairs])

    def pick(self, rng: random.Random) -> T:
        return self._items[_bisect_right(self._cum, rng.random() * self._total)]


def _geometric(rng: random.Random, p: float) -> int:
    """Failures before the first success, for success probability ``p`` (0 < p <= 1)."""
    if p >= 1.0:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def _between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]``; several times cheaper than ``randint``, which
    matters at tens of draws per customer."""
    return low + int(rng.random() * (high - low + 1))


def _lognormal_unit_mean(rng: random.Random, sigma: float) -> float:
    """A log-normal multiplier with mean 1 and a long right tail (``sigma`` sets how long)."""
    return math.exp(sigma * rng.gauss(0.0, 1.0) - sigma * sigma / 2.0)


def _km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance, accurate to well under 1 % within a city."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2.0))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


# --------------------------------------------------------------------------------------------
# Cities and shops
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shop:
    neighbourhood: str
    street: str
    latitude: float
    longitude: float
    postcode: str


@dataclass(frozen=True)
class _City:
    name: str
    code: str
    country: str
    locale: str
    timezone: str
    base_offset: int  # hours from UTC in winter
    latitude: float
    longitude: float
    weight: float  # share of customers
    spread_km: float  # how far from the centre customers live (standard deviation)
    sunday: tuple[int, int] | None  # Sunday opening hours; None when shops close on Sundays
    shops: tuple[_Shop, ...]


_CITIES = (
    _City(
        "London", "lon", "GB", "en", "Europe/London", 0, 51.5074, -0.1278, 0.30, 8.0, (11, 17),
        (
            _Shop("Covent Garden", "Long Acre", 51.5129, -0.1243, "WC2E 9JT"),
            _Shop("Islington", "Upper Street", 51.5386, -0.1027, "N1 0PN"),
            _Shop("Clapham", "Northcote Road", 51.4560, -0.1665, "SW11 1NP"),
            _Shop("Kensington", "Kensington High Street", 51.5008, -0.1924, "W8 5SE"),
            _Shop("Camden", "Camden High Street", 51.5390, -0.1426, "NW1 0JH"),
        ),
    ),
    _City(
        "Manchester", "man", "GB", "en", "Europe/London", 0, 53.4808, -2.2426, 0.12, 6.0,
        (11, 17),
        (
            _Shop("Market Street", "Market Street", 53.4827, -2.2393, "M1 1PT"),
            _Shop("Deansgate", "Deansgate", 53.4790, -2.2490, "M3 2BW"),
            _Shop("Didsbury", "Wilmslow Road", 53.4170, -2.2310, "M20 6RQ"),
        ),
    ),
    _City(
        "Paris", "par", "FR", "fr", "Europe/Paris", 1, 48.8566, 2.3522, 0.28, 5.0, None,
        (
            _Shop("Le Marais", "Rue des Francs-Bourgeois", 48.8578, 2.3595, "75004"),
            _Shop("Opéra", "Boulevard Haussmann", 48.8738, 2.3320, "75009"),
            _Shop("Montparnasse", "Rue de Rennes", 48.8462, 2.3271, "75006"),
            _Shop("Bastille", "Rue du Faubourg Saint-Antoine", 48.8520, 2.3730, "75011"),
            _Shop("Batignolles", "Rue des Batignolles", 48.8845, 2.3200, "75017"),
        ),
    ),
    _City(
        "Lyon", "lyo", "FR", "fr", "Europe/Paris", 1, 45.7640, 4.8357, 0.12, 4.0, None,
        (
            _Shop("Presqu'île", "Rue de la République", 45.7620, 4.8357, "69002"),
            _Shop("Part-Dieu", "Rue Servient", 45.7609, 4.8560, "69003"),
            _Shop("Croix-Rousse", "Grande Rue de la Croix-Rousse", 45.7760, 4.8310, "69004"),
        ),
    ),
    _City(
        "Berlin", "ber", "DE", "de", "Europe/Berlin", 1, 52.5200, 13.4050, 0.18, 7.0, None,
        (
            _Shop("Mitte", "Friedrichstraße", 52.5170, 13.3889, "10117"),
            _Shop("Prenzlauer Berg", "Kastanienallee", 52.5380, 13.4095, "10435"),
            _Shop("Kreuzberg", "Bergmannstraße", 52.4890, 13.3950, "10961"),
            _Shop("Charlottenburg", "Kurfürstendamm", 52.5030, 13.3280, "10719"),
        ),
    ),
)  # fmt: skip
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_HOURS = (9, 20)
_RETAILER = "Larder & Loom"


@dataclass(frozen=True)
class _Store:
    record: StoreRecord
    city: _City
    hours: tuple[tuple[int, int] | None, ...]  # local opening hours per weekday, Monday first


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------

_Attr = str | int | float | bool


@dataclass(frozen=True)
class _Kind:
    noun: str
    median: float  # EUR
    low: float
    high: float
    season: str | None = None
    attrs: tuple[tuple[str, _Attr], ...] = ()


@dataclass(frozen=True)
class _Sub:
    name: str
    count: int
    kinds: tuple[_Kind, ...]
    brands: tuple[str, ...]
    origins: tuple[str, ...]  # repeated entries weight a country up
    return_rate: float | None = None  # overrides the top category's
    adjectives: tuple[str, ...] = ()  # overrides the top category's
    materials: tuple[str, ...] = ()  # what its products may be made of; empty: not recorded


@dataclass(frozen=True)
class _Top:
    name: str
    code: str
    demand: float  # share of order lines in an average basket
    repeat_purchase: bool
    return_rate: float  # chance a line is returned by a customer of average propensity
    quantities: tuple[tuple[int, float], ...]
    adjectives: tuple[str, ...]
    subs: tuple[_Sub, ...]


K = _Kind
_APPAREL_BRANDS = ("Northline", "Atelier Gris", "Stadtkind", "Harbour & Finch", "Sol y Lino")
_APPAREL_ORIGINS = ("PT", "PT", "IT", "TR", "BD", "CN", "VN", "IN")
_FABRICS = ("cotton", "organic cotton", "linen", "recycled polyester", "viscose")
_HOME_BRANDS = ("Hearth & Home", "Lumen Living", "Casa Calma", "Wohnzauber")

_TOPS = (
    _Top("Wine", "WIN", 0.17, True, 0.01, ((1, 45), (2, 20), (3, 10), (6, 20), (12, 5)), (), (
        _Sub("Red", 240, (K("red", 11.0, 6.0, 40.0),), (), ()),
        _Sub("White", 180, (K("white", 10.0, 6.0, 35.0),), (), ()),
        _Sub("Rose", 60, (K("rosé", 9.0, 6.0, 25.0),), (), ()),
        _Sub("Sparkling", 80, (K("sparkling", 12.0, 6.0, 40.0),), (), ()),
    )),
    _Top("Grocery", "GRO", 0.24, True, 0.004, ((1, 60), (2, 25), (3, 10), (4, 5)),
         ("Organic", "Classic", "Artisan", "Premium", "Everyday", "Fairtrade"), (
        _Sub("Coffee", 110, (
            K("Espresso beans 1 kg", 18.0, 10.0, 35.0, attrs=(("weight_g", 1000),)),
            K("Ground coffee 250 g", 6.0, 3.5, 12.0, attrs=(("weight_g", 250),)),
            K("Coffee capsules x10", 4.0, 3.0, 7.0, attrs=(("weight_g", 55),)),
            K("Single-origin beans 250 g", 9.0, 6.0, 16.0, attrs=(("weight_g", 250),)),
        ), ("Kaldi Roasters", "Bean & Brew", "Café Solano", "Nordkaffee"),
            ("BR", "CO", "ET", "GT", "KE", "VN")),
        _Sub("Tea", 70, (
            K("Earl Grey tea", 4.0, 2.5, 9.0, attrs=(("weight_g", 100),)),
            K("Green tea", 4.5, 2.5, 10.0, attrs=(("weight_g", 100),)),
            K("Chamomile infusion", 3.5, 2.0, 7.0, attrs=(("weight_g", 40),)),
            K("Matcha powder", 14.0, 8.0, 25.0, attrs=(("weight_g", 30),)),
            K("Spiced Christmas tea", 6.0, 3.5, 12.0, "christmas", (("weight_g", 100),)),
        ), ("Leaf & Kettle", "Chai Garden", "Teehaus Berlin"), ("IN", "LK", "CN", "JP", "KE")),
        _Sub("Pasta", 70, (
            K("Spaghetti 500 g", 1.8, 0.99, 4.5, attrs=(("weight_g", 500),)),
            K("Penne 500 g", 1.8, 0.99, 4.5, attrs=(("weight_g", 500),)),
            K("Fresh tagliatelle", 3.5, 2.0, 6.0, attrs=(("weight_g", 250),)),
            K("Tomato and basil sauce", 3.2, 1.8, 6.0, attrs=(("weight_g", 400),)),
            K("Pesto alla genovese", 3.5, 2.0, 7.0, attrs=(("weight_g", 190),)),
        ), ("Pastificio Rinaldi", "Casa Gentile", "Nonna Rosa"), ("IT",)),
        _Sub("Olive Oil", 50, (
            K("Extra virgin olive oil 500 ml", 8.0, 5.0, 16.0, attrs=(("volume_ml", 500),)),
            K("Extra virgin olive oil 1 l", 13.0, 8.0, 25.0, attrs=(("volume_ml", 1000),)),
            K("Balsamic vinegar", 7.0, 4.0, 20.0, attrs=(("volume_ml", 250),)),
        ), ("Oliveto Verde", "Aceites Soledad", "Elaia"), ("IT", "IT", "ES", "ES", "GR", "PT")),
        _Sub("Chocolate", 100, (
            K("Dark chocolate bar", 2.5, 1.5, 5.0, attrs=(("weight_g", 100),)),
            K("Milk chocolate bar", 2.2, 1.2, 4.5, attrs=(("weight_g", 100),)),
            K("Pralines box", 12.0, 6.0, 30.0, attrs=(("weight_g", 250),)),
            K("Advent calendar", 12.0, 6.0, 30.0, "christmas", (("weight_g", 250),)),
            K("Chocolate Santa", 5.0, 2.5, 10.0, "christmas", (("weight_g", 150),)),
            K("Christmas truffles", 14.0, 7.0, 28.0, "christmas", (("weight_g", 200),)),
        ), ("Cacao Noir", "Schokoladen Kunst", "Belcacao", "Chocolaterie Lumière"),
            ("BE", "CH", "FR", "DE", "IT")),
        _Sub("Snacks", 100, (
            K("Sea salt crisps", 2.2, 1.2, 4.0, attrs=(("weight_g", 150),)),
            K("Salted almonds", 4.0, 2.5, 8.0, attrs=(("weight_g", 200),)),
            K("Rosemary crackers", 3.0, 1.8, 5.5, attrs=(("weight_g", 200),)),
            K("Granola bars x6", 3.5, 2.0, 6.0, attrs=(("weight_g", 210),)),
            K("Gingerbread", 4.0, 2.0, 8.0, "christmas", (("weight_g", 300),)),
            K("Stollen", 9.0, 5.0, 18.0, "christmas", (("weight_g", 750),)),
        ), ("Crunch & Co", "Salty Fox", "Knusperwerk", "Les Croquants"),
            ("GB", "DE", "FR", "ES", "NL", "IT")),
    )),
    _Top("Beauty", "BEA", 0.12, True, 0.025, ((1, 85), (2, 15)),
         ("Hydrating", "Gentle", "Radiance", "Sensitive", "Nourishing", "Pure"), (
        _Sub("Skincare", 140, (
            K("day cream 50 ml", 24.0, 9.0, 80.0, attrs=(("volume_ml", 50),)),
            K("night cream 50 ml", 28.0, 10.0, 90.0, attrs=(("volume_ml", 50),)),
            K("face serum 30 ml", 32.0, 12.0, 95.0, attrs=(("volume_ml", 30),)),
            K("cleansing gel 200 ml", 12.0, 5.0, 30.0, attrs=(("volume_ml", 200),)),
            K("lip balm", 5.0, 3.0, 12.0, attrs=(("volume_ml", 10),)),
            K("hand cream 75 ml", 7.0, 3.5, 18.0, "winter", (("volume_ml", 75),)),
        ), ("Lumiderm", "Hautpflege Natur", "Seoul Dew", "Botanica Pura"),
            ("FR", "FR", "DE", "KR", "GB", "IT", "CH")),
        _Sub("Haircare", 90, (
            K("shampoo 250 ml", 8.0, 4.0, 25.0, attrs=(("volume_ml", 250),)),
            K("conditioner 250 ml", 9.0, 4.0, 25.0, attrs=(("volume_ml", 250),)),
            K("hair mask 200 ml", 14.0, 6.0, 35.0, attrs=(("volume_ml", 200),)),
            K("hair oil 100 ml", 18.0, 8.0, 40.0, attrs=(("volume_ml", 100),)),
        ), ("Mane Theory", "Capelli", "Haarwerk"), ("FR", "DE", "IT", "GB")),
        _Sub("Fragrance", 70, (
            K("eau de parfum 50 ml", 65.0, 30.0, 150.0, attrs=(("volume_ml", 50),)),
            K("eau de toilette 100 ml", 45.0, 25.0, 110.0, attrs=(("volume_ml", 100),)),
            K("fragrance gift set", 55.0, 25.0, 120.0, "christmas", (("volume_ml", 50),)),
        ), ("Maison Ambre", "Sillage", "Nordic Musk"), ("FR", "FR", "FR", "IT", "DE")),
        _Sub("Suncare", 40, (
            K("sun cream SPF 30", 12.0, 7.0, 25.0, "summer", (("volume_ml", 200),)),
            K("sun cream SPF 50", 14.0, 8.0, 28.0, "summer", (("volume_ml", 200),)),
            K("after-sun lotion", 9.0, 5.0, 18.0, "summer", (("volume_ml", 200),)),
        ), ("Solara", "Sunveil", "Sonnenschutz Plus"), ("FR", "DE", "ES", "IT")),
    )),
    _Top("Apparel", "APP", 0.21, False, 0.30, ((1, 95), (2, 5)),
         ("Classic", "Relaxed", "Slim", "Organic cotton", "Essential", "Recycled"), (
        _Sub("Tops", 180, (
            K("T-shirt", 20.0, 8.0, 45.0), K("shirt", 40.0, 20.0, 90.0),
            K("blouse", 38.0, 18.0, 85.0), K("polo shirt", 35.0, 18.0, 70.0),
            K("hoodie", 50.0, 25.0, 90.0),
        ), _APPAREL_BRANDS, _APPAREL_ORIGINS, materials=_FABRICS),
        _Sub("Trousers", 110, (
            K("jeans", 60.0, 30.0, 140.0, attrs=(("material", "denim"),)),
            K("chinos", 50.0, 25.0, 100.0), K("joggers", 35.0, 18.0, 70.0),
            K("shorts", 30.0, 15.0, 60.0, "summer"),
        ), _APPAREL_BRANDS, _APPAREL_ORIGINS, materials=_FABRICS),
        _Sub("Knitwear", 80, (
            K("merino jumper", 70.0, 35.0, 150.0, "winter", (("material", "merino wool"),)),
            K("cardigan", 60.0, 30.0, 130.0),
            K("wool scarf", 30.0, 15.0, 70.0, "winter", (("material", "wool"),)),
            K("beanie", 18.0, 9.0, 40.0, "winter", (("material", "wool"),)),
            K("gloves", 22.0, 10.0, 50.0, "winter"),
        ), _APPAREL_BRANDS, _APPAREL_ORIGINS, materials=_FABRICS),
        _Sub("Outerwear", 90, (
            K("wool coat", 180.0, 90.0, 400.0, "winter", (("material", "wool"),)),
            K("puffer jacket", 140.0, 70.0, 300.0, "winter"),
            K("rain jacket", 90.0, 40.0, 180.0), K("trench coat", 150.0, 80.0, 300.0),
            K("denim jacket", 80.0, 40.0, 150.0, attrs=(("material", "denim"),)),
        ), _APPAREL_BRANDS, _APPAREL_ORIGINS, materials=_FABRICS),
        _Sub("Swimwear", 50, (
            K("swim shorts", 30.0, 15.0, 60.0, "summer"),
            K("swimsuit", 40.0, 20.0, 90.0, "summer"),
            K("bikini", 40.0, 20.0, 90.0, "summer"),
        ), _APPAREL_BRANDS, _APPAREL_ORIGINS, materials=_FABRICS),
        _Sub("Shoes", 140, (
            K("trainers", 80.0, 40.0, 180.0), K("leather boots", 130.0, 70.0, 260.0),
            K("sandals", 45.0, 20.0, 90.0, "summer"), K("loafers", 95.0, 50.0, 200.0),
            K("running shoes", 110.0, 60.0, 200.0),
        ), ("Stride", "Pas de Deux", "Laufwerk", "Cobble & Co"),
            ("PT", "IT", "ES", "VN", "CN"), 0.36, materials=("leather", "suede", "canvas")),
    )),
    _Top("Home", "HOM", 0.09, False, 0.05, ((1, 90), (2, 7), (4, 3)), (), (
        _Sub("Furniture", 110, (
            K("sofa", 700.0, 300.0, 1500.0, attrs=(("assembly_required", False),)),
            K("armchair", 350.0, 150.0, 900.0), K("dining table", 450.0, 180.0, 1200.0),
            K("dining chair", 90.0, 40.0, 250.0), K("bookshelf", 180.0, 60.0, 450.0),
            K("bed frame", 450.0, 200.0, 1100.0), K("side table", 80.0, 35.0, 200.0),
            K("desk", 250.0, 100.0, 600.0),
        ), ("Oakhaven", "Maison Ligne", "Holzform", "Nordvik"),
            ("PL", "PL", "DK", "SE", "IT", "VN", "CN"), 0.08,
            ("Nordic", "Rustic", "Velvet", "Oak", "Rattan", "Modern"),
            ("oak", "pine", "walnut", "velvet", "rattan", "metal")),
        _Sub("Decoration", 140, (
            K("vase", 25.0, 10.0, 80.0), K("scented candle", 15.0, 6.0, 40.0),
            K("photo frame", 12.0, 5.0, 35.0), K("wall mirror", 80.0, 30.0, 250.0),
            K("bauble set", 15.0, 6.0, 40.0, "christmas"),
            K("fairy lights", 20.0, 8.0, 50.0, "christmas"),
            K("advent wreath", 35.0, 15.0, 80.0, "christmas"),
            K("artificial Christmas tree", 120.0, 50.0, 300.0, "christmas"),
        ), _HOME_BRANDS, ("CN", "IN", "PT", "DE", "PL"), None,
            ("Nordic", "Rustic", "Modern", "Vintage", "Handmade"), ("ceramic", "glass", "metal")),
        _Sub("Textiles", 90, (
            K("cushion cover", 18.0, 8.0, 45.0), K("throw blanket", 45.0, 20.0, 120.0),
            K("bath towel set", 35.0, 15.0, 80.0), K("bed linen set", 70.0, 30.0, 180.0),
            K("beach towel", 22.0, 10.0, 45.0, "summer"),
            K("Christmas table runner", 18.0, 8.0, 40.0, "christmas"),
        ), _HOME_BRANDS, ("PT", "PT", "IN", "TR", "CN"), None,
            ("Linen", "Organic cotton", "Cosy", "Waffle", "Nordic"), ("cotton", "linen", "wool")),
        _Sub("Garden", 60, (
            K("barbecue grill", 180.0, 60.0, 600.0, "summer"),
            K("garden chair", 60.0, 25.0, 150.0, "summer"),
            K("parasol", 90.0, 35.0, 250.0, "summer"),
            K("plant pot", 20.0, 6.0, 60.0), K("watering can", 15.0, 6.0, 35.0),
            K("outdoor lantern", 25.0, 10.0, 60.0),
        ), ("Greenfold", "Jardin Clair", "Gartenglück"), ("CN", "PL", "DE", "IT"), None,
            ("Rustic", "Modern", "Weatherproof", "Folding", "Classic"),
            ("steel", "teak", "resin", "terracotta")),
    )),
    _Top("Kitchen", "KIT", 0.07, False, 0.04, ((1, 90), (2, 10)), (), (
        _Sub("Tools", 110, (
            K("corkscrew", 15.0, 6.0, 45.0), K("chef's knife", 55.0, 20.0, 180.0),
            K("cutting board", 25.0, 10.0, 70.0), K("whisk", 8.0, 4.0, 18.0),
            K("vegetable peeler", 6.0, 3.0, 15.0), K("grater", 14.0, 6.0, 35.0),
            K("pepper mill", 25.0, 10.0, 70.0), K("wine decanter", 35.0, 15.0, 90.0),
            K("cookie cutter set", 9.0, 4.0, 20.0, "christmas"),
        ), ("Chef's Edge", "Cuisine Pro", "Küchenmeister", "Olive & Iron"),
            ("DE", "DE", "FR", "IT", "JP", "CN"), None,
            ("Professional", "Stainless steel", "Classic", "Compact", "Ergonomic"),
            ("stainless steel", "carbon steel", "beech", "olive wood")),
        _Sub("Cookware", 80, (
            K("frying pan", 40.0, 18.0, 120.0), K("saucepan", 45.0, 20.0, 130.0),
            K("cast iron casserole", 140.0, 60.0, 350.0), K("baking tray", 15.0, 7.0, 35.0),
            K("wok", 40.0, 18.0, 100.0), K("roasting tin", 30.0, 12.0, 70.0, "christmas"),
        ), ("Chef's Edge", "Cuisine Pro", "Küchenmeister", "Olive & Iron"),
            ("FR", "FR", "DE", "IT", "CN"), None,
            ("Professional", "Non-stick", "Classic", "Induction", "Enamelled"),
            ("stainless steel", "cast iron", "aluminium", "enamelled steel")),
    )),
    _Top("Toys", "TOY", 0.10, False, 0.045, ((1, 90), (2, 10)),
         ("Wooden", "Deluxe", "Mini", "Classic", "Junior"), (
        _Sub("Games", 70, (
            K("board game", 30.0, 12.0, 70.0, attrs=(("age_min", 8),)),
            K("card game", 12.0, 6.0, 25.0, attrs=(("age_min", 7),)),
            K("jigsaw puzzle 1000 pieces", 18.0, 9.0, 35.0, attrs=(("age_min", 12),)),
            K("quiz game", 20.0, 10.0, 40.0, attrs=(("age_min", 10),)),
        ), ("Tiny Tinker", "Spielwerk", "Petit Monde"), ("DE", "DE", "FR", "CN")),
        _Sub("Building", 60, (
            K("building brick set", 45.0, 10.0, 200.0, attrs=(("age_min", 6),)),
            K("marble run", 40.0, 20.0, 90.0, attrs=(("age_min", 4),)),
            K("wooden train set", 55.0, 25.0, 120.0, attrs=(("age_min", 3),)),
        ), ("Bricksmith", "Spielwerk", "Tiny Tinker"), ("DK", "DE", "CN", "VN")),
        _Sub("Plush", 50, (
            K("teddy bear", 22.0, 10.0, 50.0, attrs=(("age_min", 0),)),
            K("plush unicorn", 18.0, 9.0, 40.0, attrs=(("age_min", 0),)),
            K("reindeer plush", 20.0, 9.0, 40.0, "christmas", (("age_min", 0),)),
        ), ("Petit Monde", "Tiny Tinker"), ("CN", "VN")),
        _Sub("Outdoor", 40, (
            K("water pistol", 10.0, 5.0, 25.0, "summer", (("age_min", 5),)),
            K("paddling pool", 35.0, 15.0, 80.0, "summer", (("age_min", 2),)),
            K("kite", 18.0, 8.0, 40.0, "summer", (("age_min", 6),)),
            K("wooden sledge", 45.0, 25.0, 90.0, "winter", (("age_min", 4),)),
            K("football", 15.0, 8.0, 35.0, attrs=(("age_min", 4),)),
        ), ("Spielwerk", "Petit Monde"), ("CN", "DE", "PL")),
    )),
)  # fmt: skip

# Wine is generated from estates and grapes per country rather than from kinds.
_WINE_COUNTRIES = (
    ("FR", 30), ("IT", 25), ("ES", 15), ("CL", 7), ("AR", 5), ("PT", 5), ("DE", 5), ("AU", 3),
    ("ZA", 2), ("NZ", 2), ("US", 1),
)  # fmt: skip
_WINE_ESTATES = {
    "FR": ("Château Belair", "Domaine des Sources", "Maison Lacroix", "Domaine du Clos Vert"),
    "IT": ("Tenuta Rossi", "Cantina del Poggio", "Fattoria Bellavista"),
    "ES": ("Bodegas Altamar", "Viñedos del Sol"),
    "CL": ("Viña Los Andes", "Viña Costa Azul"),
    "AR": ("Bodega Mendoza Alta",),
    "PT": ("Quinta do Rio",),
    "DE": ("Weingut Sonnenhang",),
    "AU": ("Redgum Estate",),
    "ZA": ("Kloofberg Wines",),
    "NZ": ("Kauri Bay",),
    "US": ("Sierra Ridge Cellars",),
}
_WINE_REGIONS = {
    "FR": ("Bordeaux", "Bourgogne", "Rhône", "Languedoc", "Loire", "Alsace"),
    "IT": ("Toscana", "Piemonte", "Puglia", "Veneto", "Sicilia"),
    "ES": ("Rioja", "Ribera del Duero", "Rías Baixas", "Rueda"),
    "CL": ("Valle Central", "Colchagua"),
    "AR": ("Mendoza",),
    "PT": ("Douro", "Vinho Verde", "Alentejo"),
    "DE": ("Mosel", "Pfalz", "Rheingau"),
    "AU": ("Barossa Valley",),
    "ZA": ("Stellenbosch",),
    "NZ": ("Marlborough",),
    "US": ("Napa Valley", "Sonoma"),
}
_GRAPES = {
    "red": {
        "FR": ("Merlot", "Cabernet Sauvignon", "Pinot Noir", "Syrah", "Grenache"),
        "IT": ("Sangiovese", "Nebbiolo", "Montepulciano", "Primitivo"),
        "ES": ("Tempranillo", "Garnacha"),
        "CL": ("Carmenère", "Cabernet Sauvignon"),
        "AR": ("Malbec",),
        "PT": ("Touriga Nacional",),
        "DE": ("Spätburgunder",),
        "AU": ("Shiraz",),
        "ZA": ("Pinotage",),
        "NZ": ("Pinot Noir",),
        "US": ("Zinfandel", "Cabernet Sauvignon"),
    },
    "white": {
        "FR": ("Chardonnay", "Sauvignon Blanc", "Chenin Blanc"),
        "IT": ("Pinot Grigio", "Vermentino"),
        "ES": ("Albariño", "Verdejo"),
        "CL": ("Sauvignon Blanc",),
        "AR": ("Torrontés",),
        "PT": ("Alvarinho",),
        "DE": ("Riesling", "Grauburgunder"),
        "AU": ("Chardonnay",),
        "ZA": ("Chenin Blanc",),
        "NZ": ("Sauvignon Blanc",),
        "US": ("Chardonnay",),
    },
    "rosé": {
        "FR": ("Grenache", "Cinsault"),
        "IT": ("Sangiovese",),
        "ES": ("Garnacha",),
        "PT": ("Touriga Nacional",),
    },
}
_SPARKLING = {
    "FR": (("Champagne Brut", 32.0, 24.0, 40.0), ("Crémant de Loire", 13.0, 9.0, 20.0)),
    "IT": (("Prosecco Extra Dry", 10.0, 7.0, 16.0),),
    "ES": (("Cava Brut", 9.0, 6.0, 15.0),),
    "DE": (("Riesling Sekt", 10.0, 7.0, 16.0),),
}
_APPAREL_COLOURS = ("black", "white", "navy", "grey", "beige", "olive", "burgundy", "blue")
_HOME_COLOURS = ("white", "grey", "natural", "charcoal", "sage", "terracotta", "ochre")
_APPAREL_SIZE = _Picker.of((("XS", 8), ("S", 20), ("M", 30), ("L", 25), ("XL", 12), ("XXL", 5)))
_SHOE_SIZE = _Picker([str(size) for size in range(36, 47)], (3, 6, 9, 11, 12, 12, 12, 11, 10, 8, 6))
# Adjectives that name a material, so a "Velvet armchair" is not recorded as made of oak.
_ADJECTIVE_MATERIALS = {
    "Organic cotton": "organic cotton", "Recycled": "recycled polyester", "Linen": "linen",
    "Velvet": "velvet", "Oak": "oak", "Rattan": "rattan", "Stainless steel": "stainless steel",
}  # fmt: skip
_NOUN_MATERIALS = ("leather", "cast iron", "wool", "wooden")
# Seasons a calendar month belongs to, and how much of a basket that season's items take then.
_SEASON_SHARES: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("winter", 0.10),),
    2: (("winter", 0.08),),
    6: (("summer", 0.12),),
    7: (("summer", 0.14),),
    8: (("summer", 0.10),),
    11: (("christmas", 0.12),),
    12: (("christmas", 0.22), ("winter", 0.08)),
}

# --------------------------------------------------------------------------------------------
# Customers and behaviour
# --------------------------------------------------------------------------------------------

_FIRST_NAMES = {
    "en": ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Charlie",
           "Emily", "Thomas", "Sophie", "James", "Grace", "William", "Lily", "Noah", "Chloe",
           "Samuel", "Ella", "Daniel", "Hannah", "Joseph", "Lucy", "Aisha", "Mohammed", "Priya",
           "Ethan", "Freya", "Leo"),
    "fr": ("Gabriel", "Louise", "Raphaël", "Emma", "Léo", "Jade", "Louis", "Alice", "Arthur",
           "Chloé", "Jules", "Lina", "Adam", "Léa", "Hugo", "Rose", "Nathan", "Manon", "Lucas",
           "Camille", "Théo", "Inès", "Paul", "Sarah", "Hélène", "Antoine", "Claire", "Nicolas",
           "Julie", "Mathis"),
    "de": ("Ben", "Emilia", "Paul", "Hannah", "Leon", "Emma", "Finn", "Mia", "Jonas", "Sofia",
           "Elias", "Lina", "Noah", "Mila", "Felix", "Lea", "Lukas", "Marie", "Maximilian",
           "Clara", "Jan", "Anna", "Tim", "Laura", "Jürgen", "Sabine", "Stefan", "Katrin",
           "Tobias", "Jörg"),
}  # fmt: skip
_LAST_NAMES = {
    "en": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
           "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
           "Green", "Hall", "Wood", "Jackson", "Clarke", "Khan", "Hughes", "Edwards", "Turner",
           "Hill", "O'Brien", "Murphy"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
           "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier",
           "Dupont", "Lambert", "Bonnet", "François", "Faure", "Nguyen"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
           "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Yilmaz"),
}  # fmt: skip
# Email local parts are plain ASCII, as most providers still require in practice.
_ASCII = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "ë": "e",
    "à": "a", "â": "a", "ç": "c", "î": "i", "ï": "i", "ô": "o", "'": "", " ": "",
})  # fmt: skip
_EMAIL_DOMAINS = _Picker.of((("example.com", 60), ("example.org", 25), ("example.net", 15)))
_CITY_PICKER = _Picker.of(tuple((city, city.weight) for city in _CITIES))

_CHANNEL_MIX = _Picker.of((("web", 45), ("app", 25), ("store", 25), ("call_center", 5)))
# Local hour-of-day weights: the web peaks at lunch and in the evening, the app in the evening,
# the call centre in office hours, the shops in the afternoon.
_HOUR_WEIGHTS = {
    "web": dict(zip(range(6, 24), (1, 2, 3, 4, 5, 5, 6, 6, 5, 5, 5, 5, 6, 8, 9, 9, 6, 3),
                    strict=True)),
    "app": dict(zip(range(6, 24), (1, 3, 3, 2, 2, 2, 4, 4, 2, 2, 3, 4, 6, 8, 10, 11, 8, 4),
                    strict=True)),
    "call_center": dict(zip(range(8, 20), (3, 6, 8, 8, 6, 6, 8, 8, 7, 5, 3, 2), strict=True)),
    "store": dict(zip(range(9, 20), (2, 4, 6, 8, 8, 7, 7, 8, 9, 8, 5), strict=True)),
}  # fmt: skip
_WEEKDAY_WEIGHTS = {
    "web": (1.10, 1.00, 1.00, 1.00, 0.95, 0.85, 1.10),
    "app": (1.00, 0.95, 0.95, 1.00, 1.00, 1.05, 1.15),
    "store": (0.80, 0.85, 0.85, 0.95, 1.10, 1.60, 0.60),
    "call_center": (1.20, 1.10, 1.10, 1.10, 1.00, 0.50, 0.30),
}
# November-December peak, a January-February lull.
_MONTH_WEIGHTS = (0.85, 0.80, 0.90, 0.92, 0.95, 1.00, 1.02, 0.95, 0.95, 1.00, 1.45, 1.75)
_DEVICES = {
    "web": _Picker.of((("desktop", 60), ("mobile", 30), ("tablet", 10))),
    "app": _Picker.of((("mobile", 88), ("tablet", 12))),
}
# Carriers per country, and how often each misses its promise outside the peak season.
_CARRIERS = {
    "GB": _Picker.of((("DPD", 40), ("DHL", 35), ("UPS", 25))),
    "FR": _Picker.of((("La Poste", 50), ("DPD", 30), ("UPS", 20))),
    "DE": _Picker.of((("DHL", 55), ("DPD", 30), ("UPS", 15))),
}
_CARRIER_LATENESS = {"DHL": 0.07, "DPD": 0.10, "UPS": 0.06, "La Poste": 0.12}
_PEAK_LATENESS = 1.6  # mid-November to Christmas overwhelms carriers
_RECENT_LATENESS = 3.0  # the last three weeks: a carrier's bad patch the service team is on
_RECENT_DAYS = 21
_NEVER_DELIVERED = 0.01
_PROMISE_DAYS = _Picker.of(((2, 30), (3, 35), (4, 20), (5, 15)))
_DAYS_LATE = _Picker.of(((1, 5), (2, 3), (3, 2), (4, 1), (5, 1)))
_LINES_PER_ORDER = _Picker.of(((1, 45), (2, 25), (3, 13), (4, 8), (5, 5), (6, 4)))
_DISCOUNTS = _Picker.of(((10, 40), (20, 35), (30, 20), (50, 5)))
_PICKUP_HABIT = _Picker.of(((0.05, 60), (0.35, 30), (0.70, 10)))
_REVIEW_HABIT = _Picker.of(((0.3, 60), (1.5, 30), (4.0, 10)))
_RETURN_REASONS = {
    "Apparel": _Picker.of((("too_small", 34), ("too_large", 30), ("not_as_described", 12),
                           ("changed_mind", 17), ("damaged", 4), ("wrong_item", 3))),
    "other": _Picker.of((("changed_mind", 40), ("damaged", 25), ("not_as_described", 25),
                         ("wrong_item", 10))),
}  # fmt: skip
_RETURN_SIGMA = 1.4  # spread of customers' return propensity: a few serial returners
_LATE_RETURN_FACTOR = 1.8
_IN_STORE_RETURN_FACTOR = 0.6  # tried on or seen in the shop before buying
_REVIEW_BASE = 0.06

_NPS_ON_TIME = _Picker(range(11), (1, 0.5, 0.5, 1, 1.5, 3, 5, 12, 20, 25, 30))
_NPS_LATE = _Picker(range(11), (6, 4, 6, 8, 9, 11, 12, 13, 11, 8, 6))
_NPS_FAILED = _Picker(range(11), (25, 15, 12, 10, 8, 8, 6, 5, 4, 3, 2))
_CSAT = _Picker(range(1, 6), (4, 6, 15, 35, 40))
_CES = _Picker(range(1, 8), (2, 3, 5, 10, 20, 30, 30))
_RATING_ON_TIME = _Picker(range(1, 6), (4, 5, 11, 30, 50))
_RATING_LATE = _Picker(range(1, 6), (14, 18, 26, 24, 18))

# --------------------------------------------------------------------------------------------
# Texts in each locale: reviews and survey comments
# --------------------------------------------------------------------------------------------

_Texts = dict[str, tuple[tuple[str, str], ...]]
_REVIEWS: dict[str, _Texts] = {
    "en": {
        "good": (("Love it", "Exactly what I was looking for. Really happy with it."),
                 ("Excellent quality", "Great quality for the price, would recommend."),
                 ("Just as described", "Looks even better than in the photos."),
                 ("Would buy again", "Bought it as a gift and it went down very well.")),
        "mixed": (("Decent", "Does the job, but nothing special."),
                  ("OK for the price", "Fine overall, though the quality could be better."),
                  ("Not bad", "Good, but I expected a bit more for the price.")),
        "bad": (("Disappointed", "Not what I expected from the description."),
                ("Poor quality", "The quality is poor and I would not buy it again."),
                ("Not worth it", "Stopped working after a few uses.")),
        "late": (("Arrived late", "The product is fine but the delivery was days late."),
                 ("Slow delivery", "Delivery took far longer than promised.")),
        "too_small": (("Runs small", "Nice, but it runs small. Order a size up."),),
        "too_large": (("Runs large", "Nice, but it runs large. Order a size down."),),
        "damaged": (("Arrived damaged", "It arrived damaged and I had to send it back."),),
    },
    "fr": {
        "good": (("Très satisfait", "Exactement ce que je cherchais, je suis ravi."),
                 ("Excellente qualité", "Très bonne qualité pour le prix, je recommande."),
                 ("Conforme à la description", "Encore plus beau qu'en photo."),
                 ("Je recommande", "Offert en cadeau, il a beaucoup plu.")),
        "mixed": (("Correct", "Correct, mais rien d'exceptionnel."),
                  ("Bien sans plus", "Bien dans l'ensemble, la qualité pourrait être meilleure."),
                  ("Pas mal", "Pas mal, mais je m'attendais à mieux pour ce prix.")),
        "bad": (("Déçu", "Pas du tout ce que j'attendais d'après la description."),
                ("Mauvaise qualité", "Qualité médiocre, je ne le rachèterai pas."),
                ("Ne vaut pas le prix", "Hors d'usage après quelques utilisations.")),
        "late": (("Livraison en retard", "Le produit est bien mais la livraison avait "
                                         "plusieurs jours de retard."),
                 ("Livraison lente", "La livraison a pris bien plus de temps que prévu.")),
        "too_small": (("Taille petit", "Joli, mais taille petit : prenez la taille au-dessus."),),
        "too_large": (("Taille grand", "Joli, mais taille grand : prenez la taille en dessous."),),
        "damaged": (("Arrivé endommagé", "Le produit est arrivé abîmé, je l'ai renvoyé."),),
    },
    "de": {
        "good": (("Sehr zufrieden", "Genau das, was ich gesucht habe. Bin sehr zufrieden."),
                 ("Top Qualität", "Sehr gute Qualität für den Preis, klare Empfehlung."),
                 ("Wie beschrieben", "Sieht noch besser aus als auf den Fotos."),
                 ("Gerne wieder", "Als Geschenk gekauft und kam super an.")),
        "mixed": (("Ganz okay", "Erfüllt seinen Zweck, aber nichts Besonderes."),
                  ("Solide", "Insgesamt in Ordnung, die Qualität könnte besser sein."),
                  ("Geht so", "Gut, aber für den Preis hatte ich mehr erwartet.")),
        "bad": (("Enttäuscht", "Entspricht nicht der Beschreibung."),
                ("Schlechte Qualität", "Die Qualität ist schlecht, würde ich nicht wieder kaufen."),
                ("Nicht empfehlenswert", "Nach wenigen Benutzungen kaputt.")),
        "late": (("Verspätete Lieferung", "Das Produkt ist gut, aber die Lieferung kam "
                                          "mehrere Tage zu spät."),
                 ("Langsame Lieferung", "Die Lieferung hat viel länger gedauert als versprochen.")),
        "too_small": (("Fällt klein aus", "Schön, aber fällt klein aus. Lieber eine Nummer "
                                          "größer bestellen."),),
        "too_large": (("Fällt groß aus", "Schön, aber fällt groß aus. Lieber eine Nummer "
                                         "kleiner bestellen."),),
        "damaged": (("Beschädigt angekommen", "Der Artikel kam beschädigt an, ich habe ihn "
                                              "zurückgeschickt."),),
    },
}  # fmt: skip
_COMMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "promoter": ("Fast delivery and friendly service.", "Always a pleasure to order here.",
                     "Great selection and good prices."),
        "passive": ("Fine, but delivery could be quicker.", "Good overall, nothing special."),
        "detractor": ("Too expensive for what you get.", "Customer service did not help me."),
        "late": ("My parcel was late and nobody told me.", "Delivery was days late."),
        "failed": ("My order never arrived.", "Still waiting for my parcel, very frustrating."),
        "shop_good": ("Helpful staff.", "Quick checkout, lovely shop."),
        "shop_bad": ("Long queue at the till.", "Could not find anyone to help me."),
        "easy": ("Easy checkout.", "Quick and simple."),
        "hard": ("Checkout was confusing.", "Payment failed twice."),
    },
    "fr": {
        "promoter": ("Livraison rapide et service aimable.", "Toujours un plaisir de commander.",
                     "Beau choix et bons prix."),
        "passive": ("Bien, mais la livraison pourrait être plus rapide.",
                    "Correct dans l'ensemble."),
        "detractor": ("Trop cher pour ce que c'est.", "Le service client ne m'a pas aidé."),
        "late": ("Mon colis est arrivé en retard, sans prévenir.", "Plusieurs jours de retard."),
        "failed": ("Ma commande n'est jamais arrivée.", "J'attends toujours mon colis."),
        "shop_good": ("Personnel très serviable.", "Passage en caisse rapide, belle boutique."),
        "shop_bad": ("Longue attente en caisse.", "Personne pour me conseiller."),
        "easy": ("Commande facile.", "Simple et rapide."),
        "hard": ("Paiement compliqué.", "Le paiement a échoué deux fois."),
    },
    "de": {
        "promoter": ("Schnelle Lieferung und freundlicher Service.", "Bestelle immer wieder gern.",
                     "Tolle Auswahl, faire Preise."),
        "passive": ("Gut, aber die Lieferung könnte schneller sein.", "Insgesamt in Ordnung."),
        "detractor": ("Zu teuer für das, was man bekommt.",
                      "Der Kundenservice hat nicht geholfen."),
        "late": ("Mein Paket kam zu spät, ohne Info.", "Die Lieferung war Tage zu spät."),
        "failed": ("Meine Bestellung ist nie angekommen.", "Warte immer noch auf mein Paket."),
        "shop_good": ("Sehr hilfsbereites Personal.", "Schnell an der Kasse, schöner Laden."),
        "shop_bad": ("Lange Schlange an der Kasse.", "Niemand war da, um zu helfen."),
        "easy": ("Einfache Bestellung.", "Schnell und unkompliziert."),
        "hard": ("Der Bestellvorgang war verwirrend.", "Die Zahlung ist zweimal fehlgeschlagen."),
    },
}  # fmt: skip


class _Item:
    """A product plus what the simulation needs to know about it."""

    __slots__ = ("quantities", "record", "return_rate", "sku", "sub", "top")

    def __init__(
        self,
        record: ProductRecord,
        top: _Top,
        sub: str,
        return_rate: float,
        quantities: _Picker[int],
    ) -> None:
        self.record = record
        self.sku = record.sku
        self.top = top
        self.sub = sub
        self.return_rate = return_rate
        self.quantities = quantities


@dataclass(slots=True)
class _Profile:
    """A customer's record and the facts about them the history needs (slotted, not frozen:
    one is built per customer and frozen dataclasses are slower to construct)."""

    number: int
    record: CustomerRecord
    city: _City
    signup_s: int
    preferred: _Store
    nearby: tuple[_Store, ...]  # the other shops in the home city


@dataclass(slots=True)
class _Placed:
    """An order's skeleton, before its lines are drawn."""

    placed_s: int
    channel: str
    fulfilment: str
    store: _Store | None


def _price_cents(rng: random.Random, median: float, low: float, high: float) -> int:
    """A log-normal price whose middle 95 % spans ``low``-``high``, ending the way shops price
    (2.49, 12.99, 44.99, 749.00), and never outside the band."""
    sigma = math.log(high / low) / 4.0
    euros = min(high, max(low, median * math.exp(sigma * rng.gauss(0.0, 1.0))))
    if euros < 20:
        cents = round(euros * 2) * 50 - 1
    elif euros < 100:
        cents = round(euros) * 100 - 1
    else:
        cents = (round(euros / 10) * 10 - 1) * 100
    return min(round(high * 100), max(round(low * 100), cents))


def _material(rng: random.Random, adjective: str, noun: str, choices: Sequence[str]) -> str:
    """What the product is made of: named by its noun ("leather boots") or adjective ("Velvet
    sofa") when they say so, otherwise a plausible choice for the category."""
    for material in _NOUN_MATERIALS:
        if material in noun:
            return "wood" if material == "wooden" else material
    return _ADJECTIVE_MATERIALS.get(adjective) or rng.choice(choices)


def _zipf(n: int, exponent: float = 0.9) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


class DemoRetailer:
    """The whole history of "Larder & Loom", a made-up omnichannel retailer.

    ``seed`` fixes everything; ``customers`` is how many customers :meth:`customers` and
    :meth:`histories` yield. Construction builds only the stores, the catalogue and a calendar
    (a few thousand objects, independent of ``customers``); customers are made on demand.
    """

    def __init__(
        self,
        *,
        seed: int,
        customers: int,
        start: date = date(2024, 1, 1),
        end: date = date(2025, 12, 31),
    ) -> None:
        if customers < 0:
            raise ValueError("customers must be zero or more")
        days = (end - start).days + 1
        if days < _MIN_WINDOW_DAYS:
            raise ValueError(f"the window must span at least {_MIN_WINDOW_DAYS} days")
        self.seed = seed
        self.customer_count = customers
        self.start = start
        self.end = end
        self._days = days
        self._t0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self._end_s = days * DAY - 1
        self._last_order_day = days - 1 - _ORDER_CUTOFF_DAYS
        self._last_signup_day = days - 1 - _SIGNUP_CUTOFF_DAYS
        rng = random.Random(f"{seed}:catalogue")
        self._stores = self._build_stores(rng)
        self._physical = [store for store in self._stores if store.record.latitude is not None]
        self._web_store = self._stores[-1]
        self._city_stores = {
            city.code: [s for s in self._physical if s.city is city] for city in _CITIES
        }
        self._city_shop_points = {
            code: [(s, s.record.latitude or 0.0, s.record.longitude or 0.0) for s in stores]
            for code, stores in self._city_stores.items()
        }
        # Category affinity pickers, one per pair of favourite categories (at most 28).
        self._affinities: dict[frozenset[str], _Picker[str]] = {}
        self._items = self._build_products(rng)
        self._products = [item.record for item in self._items]
        self._build_pools(rng)
        self._build_calendar()
        self._hour_pickers = {
            channel: _Picker(list(weights), list(weights.values()))
            for channel, weights in _HOUR_WEIGHTS.items()
        }
        self._store_hour_pickers: dict[tuple[int, int], _Picker[int]] = {}
        for store in self._physical:
            for hours in store.hours:
                if hours is not None and hours not in self._store_hour_pickers:
                    weights = {
                        h: w for h, w in _HOUR_WEIGHTS["store"].items() if hours[0] <= h < hours[1]
                    }
                    self._store_hour_pickers[hours] = _Picker(list(weights), list(weights.values()))

    # ---------------------------------------------------------------------------------- public

    def stores(self) -> list[StoreRecord]:
        """The shops, then the online warehouse ``"web"`` (no coordinates, city ``"Online"``)."""
        return [store.record for store in self._stores]

    def products(self) -> list[ProductRecord]:
        """The catalogue, in SKU order within each top category."""
        return list(self._products)

    def customers(self) -> Iterator[CustomerRecord]:
        """Customers one at a time, ``"C0000001"`` first; nothing is kept between them."""
        for index in range(self.customer_count):
            yield self._profile(self._rng(index), index).record

    def histories(self) -> Iterator[CustomerHistory]:
        """Each customer's record and whole history, one customer at a time."""
        for index in range(self.customer_count):
            yield self._history(index)

    # ------------------------------------------------------------------------- construction

    def _build_stores(self, rng: random.Random) -> list[_Store]:
        stores: list[_Store] = []
        for city in _CITIES:
            hours: tuple[tuple[int, int] | None, ...] = (*([_WEEKDAY_HOURS] * 6), city.sunday)
            opening = {
                day: "closed" if span is None else f"{span[0]:02d}:00-{span[1]:02d}:00"
                for day, span in zip(_WEEKDAYS, hours, strict=True)
            }
            for number, shop in enumerate(city.shops, start=1):
                house = _between(rng, 2, 180)
                if city.country == "GB":
                    address = f"{house} {shop.street}, {city.name} {shop.postcode}"
                elif city.country == "FR":
                    address = f"{house} {shop.street}, {shop.postcode} {city.name}"
                else:
                    address = f"{shop.street} {house}, {shop.postcode} {city.name}"
                record = StoreRecord(
                    store_id=f"st-{city.code}-{number:02d}",
                    name=f"{_RETAILER} {shop.neighbourhood}",
                    city=city.name,
                    address=address,
                    country=city.country,
                    # A block or two of jitter, so each seed's map differs a little.
                    latitude=round(shop.latitude + rng.uniform(-0.0015, 0.0015), 6),
                    longitude=round(shop.longitude + rng.uniform(-0.0015, 0.0015), 6),
                    timezone=city.timezone,
                    opening_hours=dict(opening),
                )
                stores.append(_Store(record, city, hours))
        web = StoreRecord(
            store_id=WEB_STORE_ID,
            name=f"{_RETAILER} Online",
            city="Online",
            address="Online warehouse, Zone logistique Nord, 59000 Lille",
            country="FR",
            latitude=None,
            longitude=None,
            timezone="UTC",
            opening_hours=dict.fromkeys(_WEEKDAYS, "00:00-24:00"),
        )
        # The warehouse has no shop city; it borrows Paris only for type completeness.
        stores.append(_Store(web, _CITIES[2], tuple([(0, 24)] * 7)))
        return stores

    def _build_products(self, rng: random.Random) -> list[_Item]:
        items: list[_Item] = []
        for top in _TOPS:
            quantities = _Picker.of(top.quantities)
            number = 0
            for sub in top.subs:
                path = f"{top.name}/{sub.name}"
                return_rate = top.return_rate if sub.return_rate is None else sub.return_rate
                for position in range(sub.count):
                    number += 1
                    sku = f"{top.code}-{number:05d}"
                    if top.name == "Wine":
                        record = self._wine(rng, sku, path, sub)
                    else:
                        # Kinds in turn, so every kind (the corkscrew too) is on the shelf.
                        kind = sub.kinds[position % len(sub.kinds)]
                        record = self._product(rng, sku, path, top, sub, kind)
                    items.append(_Item(record, top, path, return_rate, quantities))
        return items

    @staticmethod
    def _wine(rng: random.Random, sku: str, path: str, sub: _Sub) -> ProductRecord:
        kind = sub.kinds[0]
        attributes: dict[str, _Attr] = {"volume_ml": 750}
        if kind.noun == "sparkling":
            country = rng.choice(("FR", "FR", "IT", "IT", "ES", "DE"))
            style, median, low, high = rng.choice(_SPARKLING[country])
            estate = rng.choice(_WINE_ESTATES[country])
            name = f"{estate} {style}"
            attributes["abv"] = round(rng.uniform(11.0, 12.5), 1)
            attributes["style"] = style
        else:
            grapes = _GRAPES[kind.noun]
            country = _Picker.of([c for c in _WINE_COUNTRIES if c[0] in grapes]).pick(rng)
            grape = rng.choice(grapes[country])
            region = rng.choice(_WINE_REGIONS[country])
            estate = rng.choice(_WINE_ESTATES[country])
            # Whites and rosés are drunk young; reds are sold a few years older.
            vintage = 2023 - (_between(rng, 1, 7) if kind.noun == "red" else _between(rng, 0, 3))
            name = f"{estate} {grape} {region} {vintage}"
            median, low, high = kind.median, kind.low, kind.high
            attributes.update(
                grape=grape,
                region=region,
                vintage=vintage,
                colour=kind.noun,
                abv=round(rng.uniform(12.0 if kind.noun == "red" else 11.0, 14.5), 1),
            )
        price = _price_cents(rng, median, low, high)
        return ProductRecord(
            sku=sku,
            name=name,
            category_path=path,
            brand=estate,
            price_minor=price,
            cost_minor=round(price * rng.uniform(0.40, 0.75)),
            currency=CURRENCY,
            country_of_origin=country,
            season=None,
            attributes=attributes,
            repeat_purchase=True,
        )

    @staticmethod
    def _product(
        rng: random.Random, sku: str, path: str, top: _Top, sub: _Sub, kind: _Kind
    ) -> ProductRecord:
        brand = rng.choice(sub.brands)
        attributes: dict[str, _Attr] = dict(kind.attrs)
        adjectives = sub.adjectives or top.adjectives
        if "material" in attributes:  # no "Linen jeans": the kind already says what it is
            adjectives = tuple(a for a in adjectives if a not in _ADJECTIVE_MATERIALS)
        adjective = rng.choice(adjectives)
        noun = kind.noun
        if sub.materials:
            attributes.setdefault("material", _material(rng, adjective, noun, sub.materials))
        if top.name == "Apparel":
            colour = rng.choice(_APPAREL_COLOURS)
            size = (_SHOE_SIZE if sub.name == "Shoes" else _APPAREL_SIZE).pick(rng)
            attributes.update(colour=colour, size=size)
            name = f"{brand} {adjective} {noun}, {colour}, size {size}"
        elif top.name == "Home":
            colour = rng.choice(_HOME_COLOURS)
            attributes["colour"] = colour
            name = f"{brand} {adjective} {noun}, {colour}"
        elif top.name == "Kitchen":
            attributes["dishwasher_safe"] = rng.random() < 0.6
            name = f"{brand} {adjective} {noun}"
        elif top.name == "Beauty":
            attributes.update(vegan=rng.random() < 0.4)
            if sub.name == "Skincare":
                attributes["skin_type"] = rng.choice(("all", "dry", "oily", "sensitive"))
            name = f"{brand} {adjective} {noun}"
        elif top.name == "Grocery":
            attributes.update(organic=adjective == "Organic" or rng.random() < 0.15)
            name = f"{brand} {adjective} {noun[0].lower()}{noun[1:]}"
        else:
            name = f"{brand} {adjective} {noun}"
        price = _price_cents(rng, kind.median, kind.low, kind.high)
        return ProductRecord(
            sku=sku,
            name=name,
            category_path=path,
            brand=brand,
            price_minor=price,
            cost_minor=round(price * rng.uniform(0.40, 0.75)),
            currency=CURRENCY,
            country_of_origin=rng.choice(sub.origins),
            season=kind.season,
            attributes=attributes,
            repeat_purchase=top.repeat_purchase,
        )

    def _build_pools(self, rng: random.Random) -> None:
        """Zipf-weighted pickers: all-year items per top category (each subcategory weighted by
        its size) and per subcategory, and seasonal items per season."""
        by_sub: dict[str, list[_Item]] = {}
        by_season: dict[str, list[_Item]] = {}
        for item in self._items:
            if item.record.season is None:
                by_sub.setdefault(item.sub, []).append(item)
            else:
                by_season.setdefault(item.record.season, []).append(item)
        # Popularity rank is random, not catalogue order (which cycles through kinds).
        for items in itertools.chain(by_sub.values(), by_season.values()):
            rng.shuffle(items)
        self._sub_pickers = {
            sub: _Picker(items, _zipf(len(items))) for sub, items in by_sub.items()
        }
        self._top_pickers: dict[str, _Picker[_Item]] = {}
        for top in _TOPS:
            members: list[_Item] = []
            weights: list[float] = []
            for sub in top.subs:
                items = by_sub.get(f"{top.name}/{sub.name}", [])
                zipf = _zipf(len(items))
                total = sum(zipf)
                members.extend(items)
                weights.extend(w * len(items) / total for w in zipf)
            self._top_pickers[top.name] = _Picker(members, weights)
        self._season_pickers = {
            season: _Picker(items, _zipf(len(items), 0.7)) for season, items in by_season.items()
        }
        self._top_demand = _Picker.of(tuple((top, top.demand) for top in _TOPS))

    def _build_calendar(self) -> None:
        """Per-day facts, computed once: weekday, month, DST, channel demand and promotions."""
        weekdays: list[int] = []
        months: list[int] = []
        summer_time: list[int] = []
        seasons: list[tuple[tuple[_Picker[_Item], float], ...]] = []
        discount: list[float] = []
        lateness: list[float] = []
        cum: dict[str, list[float]] = {channel: [] for channel in CHANNELS}
        totals = dict.fromkeys(CHANNELS, 0.0)
        for offset in range(self._days):
            day = self.start + timedelta(days=offset)
            weekdays.append(day.weekday())
            months.append(day.month)
            summer_time.append(1 if 4 <= day.month <= 10 else 0)
            seasons.append(
                tuple(
                    (self._season_pickers[season], share)
                    for season, share in _SEASON_SHARES.get(day.month, ())
                    if season in self._season_pickers
                )
            )
            # January and July sales, Black Friday week: discounts are far more common.
            if (day.month == 1 and day.day <= 15) or (day.month == 7 and day.day <= 20):
                discount.append(0.35)
            elif day.month == 11 and day.day >= 24:
                discount.append(0.40)
            else:
                discount.append(0.06)
            peak = (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 24)
            recent = offset >= self._days - _RECENT_DAYS
            lateness.append(_RECENT_LATENESS if recent else _PEAK_LATENESS if peak else 1.0)
            for channel in CHANNELS:
                totals[channel] += (
                    _MONTH_WEIGHTS[day.month - 1] * _WEEKDAY_WEIGHTS[channel][day.weekday()]
                )
                cum[channel].append(totals[channel])
        self._weekday = weekdays
        self._summer_time = summer_time
        self._seasons = seasons
        by_month = {
            month: frozenset(season for season, _ in _SEASON_SHARES.get(month, ()))
            for month in range(1, 13)
        }
        self._in_season = [by_month[month] for month in months]
        self._discount = discount
        self._lateness = lateness
        self._day_cum = cum

    # -------------------------------------------------------------------------------- helpers

    def _rng(self, index: int) -> random.Random:
        # A string seed is hashed with SHA-512 inside `random`: stable across processes and
        # free of collisions between (seed, index) pairs, unlike arithmetic mixes.
        return random.Random(f"{self.seed}:customer:{index}")

    def _affinity(self, liked: frozenset[str]) -> _Picker[str]:
        """Top categories weighted by demand, four times as likely when a favourite."""
        picker = self._affinities.get(liked)
        if picker is None:
            picker = _Picker.of(
                tuple((top.name, top.demand * (4.0 if top.name in liked else 1.0)) for top in _TOPS)
            )
            self._affinities[liked] = picker
        return picker

    def _dt(self, seconds: int) -> datetime:
        return self._t0 + timedelta(0, seconds)

    def _pick_day(self, rng: random.Random, channel: str, low: int, high: int) -> int:
        """A day in ``[low, high]`` weighted by month and weekday demand for ``channel``."""
        cum = self._day_cum[channel]
        base = cum[low - 1] if low > 0 else 0.0
        return bisect.bisect_right(cum, base + rng.random() * (cum[high] - base), low, high)

    def _local_time(self, rng: random.Random, day: int, hours: _Picker[int], city: _City) -> int:
        """Seconds since ``start`` for a local hour drawn from ``hours`` on ``day``."""
        offset = city.base_offset + self._summer_time[day]
        return day * DAY + (hours.pick(rng) - offset) * HOUR + int(rng.random() * HOUR)

    def _store_time(self, rng: random.Random, day: int, store: _Store) -> int | None:
        span = store.hours[self._weekday[day]]
        if span is None:
            return None
        return self._local_time(rng, day, self._store_hour_pickers[span], store.city)

    def _open_store_time(self, rng: random.Random, day: int, store: _Store, step: int) -> int:
        """The first open day from ``day`` moving by ``step`` (shops close one day at most)."""
        moment = self._store_time(rng, day, store)
        if moment is None:
            moment = self._store_time(rng, day + step, store)
        assert moment is not None  # no shop closes two days running
        return moment

    # -------------------------------------------------------------------------------- customer

    def _profile(self, rng: random.Random, index: int) -> _Profile:
        number = index + 1
        city = _CITY_PICKER.pick(rng)
        first = rng.choice(_FIRST_NAMES[city.locale])
        last = rng.choice(_LAST_NAMES[city.locale])
        f, lst = first.lower().translate(_ASCII), last.lower().translate(_ASCII)
        style = rng.random()
        # The customer number keeps every address unique however names repeat.
        local = (
            f"{f}.{lst}{number}"
            if style < 0.6
            else f"{f}{lst}{number}"
            if style < 0.8
            else f"{f[0]}{lst}{number}"
        )
        email = f"{local}@{_EMAIL_DOMAINS.pick(rng)}"
        distance = city.spread_km * math.sqrt(-2.0 * math.log(1.0 - rng.random()))
        bearing = rng.random() * math.tau
        latitude = city.latitude + distance * math.cos(bearing) / 111.2
        longitude = city.longitude + distance * math.sin(bearing) / (
            111.2 * math.cos(math.radians(city.latitude))
        )
        # Sign-ups lean early in the window (an established base plus steady growth).
        signup_day = int(self._last_signup_day * rng.random() ** 1.3)
        signup_s = self._local_time(rng, signup_day, self._hour_pickers["web"], city)
        # Correlated consents (a Gaussian copula): privacy-minded people refuse most purposes,
        # yet each purpose keeps its own overall share.
        attitude = rng.gauss(0.0, 1.0)
        consents = {}
        for purpose, share in CONSENT_SHARES.items():
            z = 0.6 * attitude + 0.8 * rng.gauss(0.0, 1.0)
            consents[purpose] = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) < share
        # Everyone lives within ~30 km of their own city's centre, hundreds of km from any other
        # shop city, so the nearest shop overall is one of their city's.
        nearest = self._city_stores[city.code][0]
        best = math.inf
        for store, store_lat, store_lon in self._city_shop_points[city.code]:
            distance_km = _km_between(latitude, longitude, store_lat, store_lon)
            if distance_km < best:
                nearest, best = store, distance_km
        record = CustomerRecord(
            external_id=f"C{number:07d}",
            email=email,
            first_name=first,
            last_name=last,
            locale=city.locale,
            home_city=city.name,
            home_latitude=round(latitude, 6),
            home_longitude=round(longitude, 6),
            signed_up_at=self._dt(signup_s),
            consents=consents,
            preferred_store_id=nearest.record.store_id,
        )
        nearby = tuple(s for s in self._city_stores[city.code] if s is not nearest)
        return _Profile(number, record, city, signup_s, nearest, nearby)

    def _history(self, index: int) -> CustomerHistory:
        rng = self._rng(index)
        profile = self._profile(rng, index)
        return _CustomerSimulation(self, rng, profile).run()


def _order_count(rng: random.Random) -> int:
    """Orders in the window: 15 % none, then mostly one or two, with a frequent few."""
    roll = rng.random()
    if roll < 0.15:
        return 0
    if roll < 0.15 + 0.85 * 0.035:  # very frequent buyers: 10 to 60 orders
        return 10 + int(50 * rng.random() ** 2)
    # Occasional buyers rarely come back; regulars come back a handful of times.
    p = 0.65 if rng.random() < 0.75 else 0.25
    return 1 + min(40, _geometric(rng, p))


class _CustomerSimulation:
    """One customer's life, drawn from their own random stream in a fixed order."""

    def __init__(self, retailer: DemoRetailer, rng: random.Random, profile: _Profile) -> None:
        self.r = retailer
        self.rng = rng
        self.p = profile
        self.cid = profile.record.external_id
        self.t0 = retailer._t0
        self.signup_s = profile.signup_s
        self.locale = profile.record.locale
        self.views: list[ProductViewRecord] = []
        self.visits: list[StoreVisitRecord] = []
        self.reviews: list[ReviewRecord] = []
        self.answers: list[SurveyAnswerRecord] = []
        self.favourites: list[_Item] = []  # consumables bought before, in first-bought order
        self.favourite_skus: set[str] = set()
        # Latent traits, drawn in a fixed order so the stream stays reproducible.
        self.n_orders = _order_count(rng)
        self.primary = _CHANNEL_MIX.pick(rng)
        self.pickup_habit = _PICKUP_HABIT.pick(rng)
        liked = frozenset(
            (retailer._top_demand.pick(rng).name, retailer._top_demand.pick(rng).name)
        )
        self.affinity = retailer._affinity(liked)
        # People who like consumables find favourites and come back for them.
        consumer = any(top.repeat_purchase for top in _TOPS if top.name in liked)
        self.rebuy = 0.30 + 0.30 * rng.random() if consumer else 0.10
        self.return_propensity = _lognormal_unit_mean(rng, _RETURN_SIGMA)
        self.review_habit = _REVIEW_HABIT.pick(rng)
        # Most people ignore surveys; a minority answers a good share of them.
        self.survey_habit = 0.35 if rng.random() < 0.45 else 0.04
        self.engagement = _lognormal_unit_mean(rng, 0.8)
        self.digital = "app" if self.primary == "app" or rng.random() < 0.25 else "web"

    def run(self) -> CustomerHistory:
        # Orders in time order, so favourites build up as they would have.
        orders = [self._order(placed, seq) for seq, placed in enumerate(self._skeletons(), 1)]
        self._browse()
        self.views.sort(key=lambda v: v.viewed_at)
        self.visits.sort(key=lambda v: v.visited_at)
        self.reviews.sort(key=lambda v: v.written_at)
        self.answers.sort(key=lambda a: a.answered_at)
        return CustomerHistory(
            customer=self.p.record,
            orders=orders,
            product_views=self.views,
            store_visits=self.visits,
            reviews=self.reviews,
            survey_answers=self.answers,
        )

    # ---------------------------------------------------------------------------- skeletons

    def _skeletons(self) -> list[_Placed]:
        """When, where and how each order is placed, in time order."""
        rng = self.rng
        primary = self.primary
        r = self.r
        signup_s = self.p.signup_s
        signup_day = signup_s // DAY
        placed: list[_Placed] = []
        for k in range(self.n_orders):
            # Most orders come through the customer's own channel; the rest follow the market,
            # which keeps the overall mix equal to the market mix.
            channel = primary if rng.random() < 0.7 else _CHANNEL_MIX.pick(rng)
            # Half of buyers order the day they sign up (accounts are made at checkout).
            if k == 0 and rng.random() < 0.5:
                day = signup_day
            else:
                day = r._pick_day(rng, channel, signup_day, r._last_order_day)
            if channel == "store":
                store = self.p.preferred
                if self.p.nearby and rng.random() < 0.15:
                    store = rng.choice(self.p.nearby)
                step = -1 if day > signup_day else 1
                moment = r._open_store_time(rng, day, store, step)
                if moment <= signup_s:
                    moment = r._open_store_time(rng, day + 1, store, 1)
                placed.append(_Placed(moment, channel, "in_store", store))
                continue
            moment = r._local_time(rng, day, r._hour_pickers[channel], self.p.city)
            if moment <= signup_s:
                moment = signup_s + _between(rng, 120, 1800)
            if rng.random() < self.pickup_habit:
                placed.append(_Placed(moment, channel, "pickup_in_store", self.p.preferred))
            else:
                placed.append(_Placed(moment, channel, "ship", None))
        placed.sort(key=lambda o: o.placed_s)
        return placed

    # --------------------------------------------------------------------------------- orders

    def _pick_item(self, day: int, previous: _Item | None) -> _Item:
        rng = self.rng
        r = self.r
        for picker, share in r._seasons[day]:
            if rng.random() < share:
                return picker.pick(rng)
        if self.favourites and rng.random() < self.rebuy:
            favourite = rng.choice(self.favourites)
            # Last Christmas's truffles wait for next Christmas.
            if favourite.record.season is None or favourite.record.season in r._in_season[day]:
                return favourite
        # Baskets hang together: a second bottle of wine is likelier than a random item.
        top = previous.top.name if previous is not None and rng.random() < 0.5 else None
        return r._top_pickers[top or self.affinity.pick(rng)].pick(rng)

    def _order(self, placed: _Placed, seq: int) -> OrderRecord:
        rng = self.rng
        r = self.r
        day = placed.placed_s // DAY
        order_id = f"O{self.p.number:07d}-{seq:03d}"
        lines: dict[str, tuple[_Item, OrderLineRecord]] = {}
        previous: _Item | None = None
        for _ in range(_LINES_PER_ORDER.pick(rng)):
            item = self._pick_item(day, previous)
            previous = item
            if item.sku in lines:
                continue
            price = item.record.price_minor
            if rng.random() < r._discount[day]:
                price = price * (100 - _DISCOUNTS.pick(rng)) // 100
            line = OrderLineRecord(item.sku, item.quantities.pick(rng), price)
            lines[item.sku] = (item, line)
            if item.record.repeat_purchase and item.sku not in self.favourite_skus:
                self.favourite_skus.add(item.sku)
                self.favourites.append(item)

        promised: date | None = None
        delivered_s: int | None
        carrier: str | None = None
        store = placed.store or r._web_store
        if placed.fulfilment == "ship":
            carrier = _CARRIERS[self.p.city.country].pick(rng)
            promise_days = _PROMISE_DAYS.pick(rng)
            promised = r.start + timedelta(days=day + promise_days)
            lateness = _CARRIER_LATENESS[carrier] * r._lateness[day]
            roll = rng.random()
            if roll < _NEVER_DELIVERED:
                delivered_s = None
            elif roll < _NEVER_DELIVERED + lateness:
                delivered_day = day + promise_days + _DAYS_LATE.pick(rng)
                delivered_s = delivered_day * DAY + _between(rng, 8 * HOUR, 20 * HOUR)
            else:
                delivered_day = day + _between(rng, max(1, promise_days - 2), promise_days)
                delivered_s = delivered_day * DAY + _between(rng, 8 * HOUR, 20 * HOUR)
            if delivered_s is not None and delivered_s > r._end_s:
                delivered_s = (r._days - 1) * DAY + _between(rng, 8 * HOUR, 20 * HOUR)
        elif placed.fulfilment == "pickup_in_store":
            # Collected a day or two later, during opening hours.
            delivered_s = r._open_store_time(rng, day + _between(rng, 1, 2), store, 1)
            self._visit(store, delivered_s)
        else:
            delivered_s = placed.placed_s
            self._visit(store, placed.placed_s - _between(rng, 300, 2400))
        late = promised is not None and (
            delivered_s is None or (delivered_s // DAY) > (promised - r.start).days
        )

        returns = self._returns(placed, lines, delivered_s, late)
        order = OrderRecord(
            order_id=order_id,
            customer_external_id=self.cid,
            channel=placed.channel,
            fulfilment=placed.fulfilment,
            store_id=store.record.store_id,
            placed_at=r._dt(placed.placed_s),
            currency=CURRENCY,
            lines=[line for _, line in lines.values()],
            promised_delivery=promised,
            delivered_at=None if delivered_s is None else r._dt(delivered_s),
            carrier=carrier,
            returns=returns,
        )
        self._order_views(placed, lines)
        self._reviews(order_id, lines, delivered_s, late, returns)
        self._surveys(order_id, placed, store, delivered_s, promised, late)
        return order

    def _returns(
        self,
        placed: _Placed,
        lines: dict[str, tuple[_Item, OrderLineRecord]],
        delivered_s: int | None,
        late: bool,
    ) -> list[ReturnRecord]:
        if delivered_s is None:
            return []
        rng = self.rng
        factor = self.return_propensity * (_LATE_RETURN_FACTOR if late else 1.0)
        if placed.fulfilment == "in_store":
            factor *= _IN_STORE_RETURN_FACTOR
        returned: list[tuple[_Item, OrderLineRecord]] = [
            pair for pair in lines.values() if rng.random() < min(0.9, pair[0].return_rate * factor)
        ]
        if not returned:
            return []
        # One parcel or one trip to the shop per order, 1-30 days after delivery, mostly within
        # the first week or two. Shop returns happen in opening hours, from the second day on
        # (so always a full day after delivery); parcels leave at any time of day.
        in_shop = rng.random() < (0.85 if placed.fulfilment != "ship" else 0.3)
        days_later = 1 + min(26, int(rng.expovariate(1 / 6)))
        shop = placed.store or self.p.preferred
        if in_shop:
            return_day = delivered_s // DAY + days_later + 1
            if return_day >= self.r._days - 1:  # (a closed last day would spill past `end`)
                return []
            returned_s = self.r._open_store_time(rng, return_day, shop, 1)
        else:
            returned_s = delivered_s + days_later * DAY + _between(rng, 0, DAY - 1)
        if returned_s > self.r._end_s:
            return []
        if in_shop:
            self._visit(shop, returned_s)
        records = []
        for item, line in returned:
            if late and rng.random() < 0.4:
                reason = "late_delivery"
            else:
                reason = _RETURN_REASONS.get(item.top.name, _RETURN_REASONS["other"]).pick(rng)
            quantity = (
                line.quantity
                if line.quantity == 1 or rng.random() < 0.5
                else (_between(rng, 1, line.quantity))
            )
            records.append(
                ReturnRecord(
                    sku=item.sku,
                    quantity=quantity,
                    reason=reason,
                    returned_at=self.r._dt(returned_s),
                    channel="store" if in_shop else "web",
                )
            )
        return records

    # ---------------------------------------------------------------------- views and visits

    def _view(self, sku: str, channel: str, device: str, moment: int) -> None:
        # Pages seen before the account existed were anonymous: not part of this history.
        if moment >= self.signup_s:
            at = self.t0 + timedelta(0, moment)
            self.views.append(ProductViewRecord(self.cid, sku, channel, device, at))

    def _visit(self, store: _Store, moment: int) -> None:
        # A walk-in who signs up at the till was in the shop a little before the sign-up;
        # the visit is recorded from when the customer became known.
        moment = max(moment, self.p.signup_s)
        self.visits.append(StoreVisitRecord(self.cid, store.record.store_id, self.r._dt(moment)))
        if self.rng.random() < self.survey_habit * 0.5:
            score = _CSAT.pick(self.rng)
            answered = moment + _between(self.rng, HOUR, 2 * DAY)
            if answered <= self.r._end_s:
                key = "shop_good" if score >= 4 else "shop_bad"
                self._answer("csat", "after_store_visit", None, store, score, key, answered)

    def _order_views(
        self, placed: _Placed, lines: dict[str, tuple[_Item, OrderLineRecord]]
    ) -> None:
        """Product pages seen before buying: the bought items and alternatives beside them."""
        rng = self.rng
        if placed.channel in ("web", "app"):
            channel = placed.channel
        elif rng.random() < 0.35:  # researched online before a shop or phone purchase
            channel = self.digital
        else:
            return
        session_end = placed.placed_s - _between(rng, 60, 600)
        if placed.channel not in ("web", "app"):
            session_end -= _between(rng, 1, 5) * DAY
        moment = session_end
        device = _DEVICES[channel].pick(rng)
        # Walking backwards from the checkout: each bought item, and the alternatives compared
        # with it on the way.
        for item, _ in lines.values():
            self._view(item.sku, channel, device, moment)
            moment -= _between(rng, 30, 400)
            alternatives = self.r._sub_pickers.get(item.sub)
            if alternatives is None:  # a seasonal-only subcategory: nothing else to compare
                continue
            for _ in range(_geometric(rng, 0.5)):
                self._view(alternatives.pick(rng).sku, channel, device, moment)
                moment -= _between(rng, 30, 400)

    def _browse(self) -> None:
        """Sessions of browsing that end without an order, and shop visits without a purchase."""
        rng = self.rng
        r = self.r
        first_day = self.p.signup_s // DAY
        active_days = r._days - first_day
        sessions = min(40, int(active_days / 90 * self.engagement + rng.random()))
        if self.n_orders == 0:
            sessions = max(1, sessions)  # window shoppers at least looked once
        view = self._view
        end_s = r._end_s
        for _ in range(sessions):
            channel = self.digital
            if rng.random() < 0.2:  # now and then on the other digital channel
                channel = "web" if channel == "app" else "app"
            day = r._pick_day(rng, channel, first_day, r._days - 1)
            moment = r._local_time(rng, day, r._hour_pickers[channel], self.p.city)
            if moment < self.signup_s:  # a session on the sign-up day starts after signing up
                moment = self.signup_s + _between(rng, 60, HOUR)
            device = _DEVICES[channel].pick(rng)
            item = self._pick_item(day, None)
            view(item.sku, channel, device, moment)
            # Browsing stays within the subcategory the session started in.
            picker = r._sub_pickers.get(item.sub)
            if picker is None:
                continue
            for _ in range(_geometric(rng, 0.45)):
                moment += _between(rng, 20, 300)
                if moment > end_s:
                    break
                view(picker.pick(rng).sku, channel, device, moment)
        # Shop regulars also drop in without buying.
        for _ in range(int(len(self.visits) * rng.uniform(0.2, 1.0))):
            day = r._pick_day(rng, "store", first_day, r._days - 1)
            store = self.p.preferred
            drop_in = r._store_time(rng, day, store)
            if drop_in is not None and self.p.signup_s < drop_in <= r._end_s:
                self._visit(store, drop_in)

    # ---------------------------------------------------------------------- reviews, surveys

    def _reviews(
        self,
        order_id: str,
        lines: dict[str, tuple[_Item, OrderLineRecord]],
        delivered_s: int | None,
        late: bool,
        returns: list[ReturnRecord],
    ) -> None:
        """A few delivered lines get a review; returns and late parcels make one likelier and
        harsher, and a returned item's review echoes why it went back."""
        if delivered_s is None:
            return
        rng = self.rng
        reasons = {ret.sku: ret for ret in returns}
        for item, _ in lines.values():
            returned = reasons.get(item.sku)
            chance = _REVIEW_BASE * self.review_habit
            # Unhappy customers write more: returns and late parcels prompt reviews.
            if returned is not None:
                chance *= 2.0
            elif late:
                chance *= 1.5
            if rng.random() >= chance:
                continue
            if returned is not None:
                reason = returned.reason
                written_s = int((returned.returned_at - self.r._t0).total_seconds())
                written_s += _between(rng, HOUR, 5 * DAY)
                if reason in ("too_small", "too_large"):
                    rating, key = _between(rng, 3, 4), reason
                elif reason == "damaged":
                    rating, key = _between(rng, 1, 2), "damaged"
                elif reason == "late_delivery":
                    rating, key = _between(rng, 1, 3), "late"
                elif reason == "changed_mind":
                    rating = _between(rng, 3, 5)
                    key = "good" if rating >= 4 else "mixed"
                else:
                    rating, key = _between(rng, 1, 2), "bad"
            else:
                written_s = delivered_s + _between(rng, 2 * DAY, 21 * DAY)
                rating = (_RATING_LATE if late else _RATING_ON_TIME).pick(rng)
                if late and rating <= 3:
                    key = "late"
                else:
                    key = "good" if rating >= 4 else "mixed" if rating == 3 else "bad"
            if written_s > self.r._end_s:
                continue
            title, text = rng.choice(_REVIEWS[self.locale][key])
            self.reviews.append(
                ReviewRecord(
                    self.cid, order_id, item.sku, rating, title, text, self.r._dt(written_s)
                )
            )

    def _surveys(
        self,
        order_id: str,
        placed: _Placed,
        store: _Store,
        delivered_s: int | None,
        promised: date | None,
        late: bool,
    ) -> None:
        """NPS after a delivery or collection (lower when late, lowest when lost), and now and
        then a CES question right after buying."""
        rng = self.rng
        r = self.r
        if placed.fulfilment != "in_store" and rng.random() < self.survey_habit:
            if delivered_s is None:
                assert promised is not None
                answered = ((promised - r.start).days + _between(rng, 3, 7)) * DAY + 12 * HOUR
                score, key = _NPS_FAILED.pick(rng), "failed"
            else:
                answered = delivered_s + _between(rng, HOUR, 3 * DAY)
                score = (_NPS_LATE if late else _NPS_ON_TIME).pick(rng)
                key = (
                    "promoter" if score >= 9
                    else "passive" if score >= 7
                    else "late" if late
                    else "detractor"
                )  # fmt: skip
            if answered <= r._end_s:
                at_store = store if placed.fulfilment == "pickup_in_store" else None
                self._answer("nps", "after_delivery", order_id, at_store, score, key, answered)
        if rng.random() < self.survey_habit * 0.25:
            score = _CES.pick(rng)
            answered = placed.placed_s + _between(rng, 60, 2 * HOUR)
            if answered <= r._end_s:
                at_store = store if placed.fulfilment == "in_store" else None
                key = "easy" if score >= 5 else "hard"
                self._answer("ces", "after_purchase", order_id, at_store, score, key, answered)

    def _answer(
        self,
        kind: str,
        trigger: str,
        order_id: str | None,
        store: _Store | None,
        score: int,
        comment_key: str,
        answered_s: int,
    ) -> None:
        rng = self.rng
        # Unhappy people explain themselves more often than happy ones.
        unhappy = comment_key in ("detractor", "late", "failed", "shop_bad", "hard")
        comment = (
            rng.choice(_COMMENTS[self.locale][comment_key])
            if rng.random() < (0.5 if unhappy else 0.25)
            else None
        )
        self.answers.append(
            SurveyAnswerRecord(
                customer_external_id=self.cid,
                kind=kind,
                trigger=trigger,
                order_id=order_id,
                store_id=None if store is None else store.record.store_id,
                score=score,
                comment=comment,
                answered_at=self.r._dt(answered_s),
            )
        )
