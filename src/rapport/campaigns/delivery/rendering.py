"""Rendering a campaign's message for one recipient: the template for the channel and the
customer's locale, filled in a Jinja2 sandbox with what Rapport knows about the customer.

Templates see:

- ``customer.first_name`` (``"there"`` when unknown), ``customer.last_name``,
  ``customer.locale``, and ``first_name`` as a shortcut;
- ``points`` (available balance) and ``tier`` (tier name), from loyalty;
- ``recommendations``: up to four products (``sku``, ``name``, ``category``, ``price_minor``)
  for the ``email`` placement, only for customers with ``personalization`` consent (else an
  empty list);
- ``occasion``: the values the producer attached to the delivery (order id, survey link …),
  also available by name at the top level; a path on this installation it attached as
  ``<name>_path`` (a survey's signed ``/s/<token>``) is also there as ``<name>_url``, under
  ``RAPPORT_PUBLIC_BASE_URL`` as it stands at render time (:func:`with_links`), so a message
  queued before the setting changed carries the new host;
- ``unsubscribe_url``: a signed link to the public page that withdraws the consent the
  message is sent under (:func:`consent_purpose`; empty for staff messages and for service
  messages no consent governs, such as a late-delivery notice or apology points); previews
  and test sends get :func:`sample_unsubscribe_url` instead, a link that changes nothing.

Names a template uses that are none of these are refused when the template is saved
(:func:`validate_template`) and make the delivery fail, with the name, at send time. Email
bodies are HTML and autoescaped; subjects, webhook and inbox bodies are plain text. Loyalty and
recommendation lookups run only when the template uses them; the dispatcher loads a batch's
points and tiers in bulk (:meth:`Renderer.prefetch`), so a batch costs two queries whatever its
size, not one per recipient.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from string import Formatter
from typing import Any, cast

import jinja2
from itsdangerous import BadSignature, Signer
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, CampaignTemplate, WebhookEndpoint
from rapport.customers import service as customers
from rapport.loyalty import service as loyalty
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.settings import Settings, get_settings
from rapport.recommend import service as recommend

FALLBACK_NAME = "there"
RECOMMENDATIONS = 4
KNOWN_NAMES = frozenset(
    {"customer", "first_name", "points", "tier", "recommendations", "occasion", "unsubscribe_url"}
)
# What ``customer`` holds (:meth:`Renderer._values`): a template naming anything else of it is
# refused when saved.
CUSTOMER_FIELDS = frozenset({"first_name", "last_name", "locale"})
# Every template's names besides the occasion's, as a refusal lists them.
_GIVEN_TO_ALL = ", ".join(
    sorted(KNOWN_NAMES - {"occasion", "customer"})
    + [f"customer.{name}" for name in sorted(CUSTOMER_FIELDS)]
)
_UNSUBSCRIBE_SALT = "rapport.campaigns.unsubscribe"
# The marketing consent each channel's messages need (a webhook endpoint names its own).
CHANNEL_PURPOSES = {"email": "marketing_email", "inbox": "marketing_push"}
# The service messages a consent governs, by system campaign key: a survey invitation goes only
# to customers holding the survey's consent (always ``marketing_email``: docs/feedback.md), so
# withdrawing it stops survey invitations. Other service messages (a late-delivery notice,
# apology points, the retailer's own service campaigns) go whatever the customer's marketing
# consent: an unsubscribe link would not stop them, so they carry none.
SERVICE_CONSENTS = {"feedback.survey_invitation": "marketing_email"}
# The token of the sample link previews and test sends carry: its page says so and changes
# nothing (a real token is "<customer id>.<purpose>.<signature>", never this).
SAMPLE_TOKEN = "sample"


class TemplateError(Exception):
    """A template could not be rendered (a name it uses is unknown, a sandbox violation)."""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    unsubscribe_url: str
    # The plain-text alternative of an HTML email body ('' for other channels).
    text: str = ""


@dataclass(frozen=True)
class CustomerFacts:
    """What rendering needs of a customer, loaded in bulk by the sender."""

    customer_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    locale: str
    time_zone: str | None


def load_customers(db: Session, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
    """The facts rendering and gating need for ``customer_ids``, in one query per 1,000."""
    wanted = sorted(set(customer_ids))
    found: dict[str, CustomerFacts] = {}
    table = customers.Customer
    for start in range(0, len(wanted), 1000):
        for row in db.execute(
            select(
                table.customer_id,
                table.first_name,
                table.last_name,
                table.email,
                table.phone,
                table.locale,
                table.time_zone,
            ).where(table.customer_id.in_(wanted[start : start + 1000]))
        ):
            found[row.customer_id] = CustomerFacts(*row)
    return found


# ---------------------------------------------------------------------- the sandbox
#
# A template is the retailer's code running in our process, so rendering one is bounded by
# construction (docs/campaigns-delivery.md, "Template limits"): every loop round, call and
# filter is a step; what every operation builds, and what the template writes, is measured
# as it is made; operations that would build something past a limit are refused before they
# run; and a render stops after RENDER_SECONDS. Going past a limit raises LimitExceeded,
# which the caller reports as the author's template error, never as our failure.

MAX_RANGE = 1_000  # numbers one range() gives
MAX_STEPS = 20_000  # loop rounds, calls and filters in one render
MAX_VALUE_CHARS = 200_000  # characters in one value (a string, or all strings in a list)
MAX_VALUE_ITEMS = 10_000  # items in one value, nested ones included
MAX_WRITTEN_CHARS = 500_000  # characters written in one render, macros' included
MAX_BUILT_CHARS = 5_000_000  # characters built by all the operations of one render
MAX_INT_BITS = 4_096  # a number's size (about 1,200 digits)
MAX_FORMAT_WIDTH = 1_000  # a width or precision in "%10s" or "{:>10}"
RENDER_SECONDS = 1.0  # one subject or body

# The exceptions a template's own code raises while rendering: its author's error.
TEMPLATE_FAULTS = (
    jinja2.TemplateError,
    ArithmeticError,
    TypeError,
    ValueError,
    LookupError,
    RecursionError,
)


class LimitExceeded(SecurityError):
    """A template went past one of the rendering limits."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    written: int = 0
    built: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("rapport_template_budget", default=None)


def _current() -> _Budget:
    budget = _budget.get()
    if budget is None:  # our bug: templates render only through _render_bounded
        raise RuntimeError("a campaign template rendered outside its budget")
    return budget


def _step() -> None:
    budget = _current()
    budget.steps += 1
    if budget.steps > MAX_STEPS:
        raise LimitExceeded(
            f"it takes more than {MAX_STEPS:,} steps (loop rounds, calls and filters); "
            "loop over fewer items or nest fewer loops"
        )
    if time.monotonic() > budget.deadline:
        raise LimitExceeded(f"it takes more than {RENDER_SECONDS:g} second to render")


def _measure(value: Any) -> int:
    """The characters in ``value`` (a string, or every string inside a list or mapping);
    raises LimitExceeded past a value's limits. Walks at most MAX_VALUE_ITEMS items."""
    if isinstance(value, str) and len(value) <= MAX_VALUE_CHARS:
        return len(value)  # the common case, without the walk
    if isinstance(value, float | bool | None) or (
        type(value) is int and value.bit_length() <= MAX_INT_BITS
    ):
        return 0
    items = chars = 0
    pending = [value]
    while pending:
        item = pending.pop()
        items += 1
        if items > MAX_VALUE_ITEMS:
            raise LimitExceeded(
                f"a list or mapping holds more than {MAX_VALUE_ITEMS:,} items in all"
            )
        if isinstance(item, str | bytes):
            chars += len(item)
            if chars > MAX_VALUE_CHARS:
                raise LimitExceeded(
                    f"a value grows past {MAX_VALUE_CHARS:,} characters; repeat or join less text"
                )
        elif isinstance(item, bool | float | None):
            continue
        elif isinstance(item, int):
            if item.bit_length() > MAX_INT_BITS:
                raise LimitExceeded(f"a number grows past {MAX_INT_BITS:,} bits")
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return chars


def _built(value: Any) -> Any:
    """``value``, made by an operation of the template: measured and counted."""
    budget = _current()
    budget.built += _measure(value)
    if budget.built > MAX_BUILT_CHARS:
        raise LimitExceeded(
            f"it builds more than {MAX_BUILT_CHARS:,} characters of text; repeat or join less text"
        )
    return value


def _too_big(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceeded(f"{what} would make {size:,}, past the limit of {limit:,}")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_widths(numbers: Iterable[str | None]) -> None:
    for number in numbers:
        if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
            raise LimitExceeded(
                f"a format's width or precision is past {MAX_FORMAT_WIDTH:,} "
                "(or given as an argument)"
            )


def _check_printf(pattern: Any) -> None:
    if isinstance(pattern, str):
        for match in _PRINTF_SPEC.finditer(pattern):
            _check_widths(match.groups())


def _check_format(pattern: Any) -> None:
    if not isinstance(pattern, str):
        return
    try:
        fields = list(Formatter().parse(pattern))
    except ValueError:
        return  # str.format reports it
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            _check_widths(["*"])
        _check_widths(re.findall(r"\d+", spec or ""))


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = len(text) + 1 if not old else len(text) // len(old)
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        _too_big("replace", len(text) + times * len(new), MAX_VALUE_CHARS)


def _width(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _materialized(args: tuple[Any, ...], position: int, separator: Any) -> tuple[Any, ...]:
    """``args`` with the iterable at ``position`` as a measured list (what a join joins)."""
    if len(args) <= position:
        return args
    items = list(args[position])
    _measure(items)
    if isinstance(separator, str):
        _too_big("join", len(items) * len(separator), MAX_VALUE_CHARS)
    return (*args[:position], items, *args[position + 1 :])


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a str method call that would build past the limits before it runs."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in {"ljust", "rjust", "center", "zfill"} and args:
        _too_big(name, _width(args[0]), MAX_VALUE_CHARS)
    elif name in {"expandtabs", "translate", "maketrans"}:
        raise LimitExceeded(f"templates cannot call {name}")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, *args[:3])
    elif name == "join":
        return _materialized(args, 0, owner)
    return args


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a filter that would build past the limits before it runs (``args`` without
    the context Jinja passes some filters)."""
    if name == "center":
        _too_big(
            "center", _width(kwargs.get("width", args[1] if len(args) > 1 else 0)), MAX_VALUE_CHARS
        )
    elif name == "indent" and args:
        width = kwargs.get("width", args[1] if len(args) > 1 else 4)
        size = len(width) if isinstance(width, str) else _width(width)
        _too_big("indent", (str(args[0]).count("\n") + 1) * size, MAX_VALUE_CHARS)
    elif name == "format" and args:
        _check_printf(args[0])
    elif name == "replace" and len(args) >= 3:
        _check_replace(*args[:4])
    elif name == "wordwrap" and args:
        wrap = kwargs.get("wrapstring", args[4] if len(args) > 4 else None)
        if isinstance(wrap, str):
            _too_big("wordwrap", len(str(args[0])) * (len(wrap) + 1), MAX_VALUE_CHARS)
    elif name == "slice" and len(args) > 1:
        _too_big("slice", _width(kwargs.get("slices", args[1])), MAX_VALUE_ITEMS)
    elif name == "join" and args:
        return _materialized(args, 0, kwargs.get("d", args[1] if len(args) > 1 else ""))
    return args


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        given = args[passes:]
        for value in (*given, *kwargs.values()):
            _measure(value)
        given = _check_filter(name, given, kwargs)
        return _built(function(*args[:passes], *given, **kwargs))

    return bounded


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(
            f"range() gives at most {MAX_RANGE:,} numbers; loop over the items themselves"
        )
    return numbers


@pass_context
def _rounds(context: Context, iterable: Any) -> Iterator[Any]:
    """What a for loop iterates: one step per round."""
    _measure(iterable)
    for item in iterable:
        _step()
        yield item


@pass_context
def _value(context: Context, value: Any) -> Any:
    return _built(value)


@pass_context
def _write(context: Context, value: Any) -> Any:
    budget = _current()
    budget.written += _measure(value)
    if budget.written > MAX_WRITTEN_CHARS:
        raise LimitExceeded(
            f"it writes more than {MAX_WRITTEN_CHARS:,} characters; write a shorter message"
        )
    if time.monotonic() > budget.deadline:
        raise LimitExceeded(f"it takes more than {RENDER_SECONDS:g} second to render")
    return value


_ROUNDS, _VALUE, _WRITE = "rapport_rounds", "rapport_value", "rapport_write"


def _filtered(node: nodes.Node, name: str) -> nodes.Expr:
    return nodes.Filter(cast(nodes.Expr, node), name, [], [], None, None, lineno=node.lineno)


class _Bounding(NodeTransformer):
    """Puts a template's loops, concatenations and output through the budget's filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        if node.recursive:
            raise LimitExceeded("recursive loops are not available in templates")
        node.iter = _filtered(node.iter, _ROUNDS)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_filtered(child, _WRITE) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        joined = node.nodes[0]
        for operand in node.nodes[1:]:  # pairwise, each result measured before the next
            joined = _filtered(nodes.Concat([joined, operand], lineno=node.lineno), _VALUE)
        return joined


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox templates render in (no mutating a list or dict, no reaching into
    Python), with every operation that could run long or build much measured: see the
    limits above."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, autoescape: bool) -> None:
        # Not optimized: the optimizer would run filters on constants while compiling.
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, optimized=False)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters.update({_ROUNDS: _rounds, _VALUE: _value, _WRITE: _write})

    def bounded(self, source: str) -> jinja2.Template:
        """``source`` compiled with its loops, concatenations and output measured; raises
        TemplateSyntaxError, or LimitExceeded for what templates cannot do at all."""
        tree = _Bounding().visit(self.parse(source))
        return self.from_string(tree)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _measure(left)
        _measure(right)
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int):
                    _too_big("repeating", len(sequence) * times, MAX_VALUE_CHARS)
                    _too_big("repeating", _measure(sequence) * times, MAX_VALUE_CHARS)
            if isinstance(left, int) and isinstance(right, int):
                bits = left.bit_length() + right.bit_length()
                _too_big("multiplying (bits)", bits, MAX_INT_BITS + 1)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right > 0:
                _too_big("the power (bits)", (abs(left).bit_length() - 1) * right, MAX_INT_BITS)
        elif operator == "%":
            _check_printf(left)
        return _built(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # str.format, wrapped when read: its widths checked then
            _check_format(value.__self__)
        return wrapped

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        for value in (*args, *kwargs.values()):
            _measure(value)
        args = _check_method(__obj, args, kwargs)
        return _built(super().call(__context, __obj, *args, **kwargs))


_html_environment = BoundedEnvironment(autoescape=True)
_text_environment = BoundedEnvironment(autoescape=False)


def _environment(channel: str, part: str) -> BoundedEnvironment:
    return _html_environment if channel == "email" and part == "body" else _text_environment


def _render_bounded(template: jinja2.Template, values: Mapping[str, Any]) -> str:
    """``template`` rendered within a fresh budget; raises one of TEMPLATE_FAULTS."""
    token = _budget.set(_Budget(deadline=time.monotonic() + RENDER_SECONDS))
    try:
        return template.render(values)
    finally:
        _budget.reset(token)


def fault_reason(error: BaseException) -> str:
    """What went wrong in a template, for its author."""
    if isinstance(error, UndefinedError):
        return str(error.message)
    if isinstance(error, LimitExceeded):
        return f"stopped: {error}"
    if isinstance(error, SecurityError):
        return f"refused by the sandbox: {error}"
    if isinstance(error, RecursionError):
        return "a macro calls itself too deeply"
    return f"{type(error).__name__}: {error}"


def validate_template(
    subject: str,
    body: str,
    *,
    channel: str = "email",
    context_names: Iterable[str] = (),
    sample: Mapping[str, Any] | None = None,
    any_names: bool = False,
    occasion_fields: Iterable[str] | None = None,
) -> None:
    """Refuse a template that does not parse, uses a name templates do not get (see the
    module's list; ``context_names`` adds the occasion's values a producer always attaches),
    or fails rendered for a sample customer with ``sample`` as the occasion (what a preview
    shows): past a limit always; with another error when it uses none of the occasion's
    values (a real occasion may differ from the sample). Raises InvalidInput naming the field
    ('subject' or 'body'). ``any_names``: Rapport's own campaigns, whose producers attach
    values of their own, may use any name (each counts as an occasion's value).
    ``occasion_fields``: the values every delivery of the campaign carries (what a system
    campaign's producer attaches; a triggered campaign's event and deadline, a local
    invitation's store, nothing for the retailer's other campaigns): the template may use those
    (by themselves or as ``occasion.<name>``) and no other. ``customer.<name>`` is checked
    against :data:`CUSTOMER_FIELDS` whatever the campaign, so a typo is refused when saved
    rather than failing every message of it; in the sample render a field the customer, a
    recommendation or (with ``occasion_fields``) the occasion never has is refused however it
    is reached (an alias, ``|attr``, a macro: :class:`_SampleFields`)."""
    fields = None if occasion_fields is None else frozenset(occasion_fields)
    if fields is not None:
        context_names = (*context_names, *fields)
        any_names = False
    allowed = KNOWN_NAMES | set(context_names)
    varying = set(context_names) | {"occasion"}
    compiled: list[tuple[str, jinja2.Template, set[str]]] = []
    for field, source in (("subject", subject), ("body", body)):
        environment = _environment(channel, field)
        try:
            parsed = environment.parse(source)
            template = environment.bounded(source)
        except TemplateSyntaxError as error:
            raise InvalidInput(
                f"The {field} does not parse: {error.message} (line {error.lineno})", field=field
            ) from error
        except LimitExceeded as error:
            raise InvalidInput(f"The {field} cannot be used: {error}", field=field) from error
        names = meta.find_undeclared_variables(parsed)
        unknown = sorted(names - allowed)
        typos = sorted(
            f"customer.{name}" for name in _attributes_read(parsed, "customer") - CUSTOMER_FIELDS
        )
        if fields is not None:
            unknown = sorted({*unknown, *(_attributes_read(parsed, "occasion") - fields), *typos})
            if unknown:
                raise InvalidInput(
                    f"The {field} uses {', '.join(unknown)}, which this campaign's messages do"
                    f" not get; its occasion gives {', '.join(sorted(fields)) or 'nothing'}"
                    f" (by itself or as occasion.<name>), besides {_GIVEN_TO_ALL}",
                    field=field,
                )
        if any_names:
            varying |= set(unknown)
        if typos or (unknown and not any_names):
            raise InvalidInput(
                f"The {field} uses {', '.join(typos or unknown)}, which templates do not get;"
                f" use {_GIVEN_TO_ALL} or occasion.<name>",
                field=field,
            )
        compiled.append((field, template, names))
    if not body.strip():
        raise InvalidInput("The body is empty", field="body")
    values = _sample_values(sample or {}, occasion_fields=fields)
    for field, template, names in compiled:
        try:
            _render_bounded(template, values)
        except UnknownField as error:  # reached through an alias, |attr or a macro
            raise InvalidInput(
                f"The {field} uses {error.name}, which templates do not get; {error.offer}",
                field=field,
            ) from error
        except UndefinedError:
            continue  # a value the sample occasion lacks: names were checked above
        except TEMPLATE_FAULTS as error:
            if isinstance(error, LimitExceeded) or not names & varying:
                raise InvalidInput(
                    f"The {field} fails for a sample customer: {fault_reason(error)}",
                    field=field,
                ) from error


# What a template may call on the occasion itself rather than name one of its values.
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})


def _attributes_read(parsed: nodes.Template, mapping: str) -> set[str]:
    """The names a template reads from the mapping it gets as ``mapping`` (``occasion.x``,
    ``occasion['x']``, ``occasion.get('x')``)."""
    names: set[str] = set()
    for node in parsed.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        if not (isinstance(node.node, nodes.Name) and node.node.name == mapping):
            continue
        if isinstance(node, nodes.Getattr):
            if node.attr not in _MAPPING_METHODS:
                names.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
    for call in parsed.find_all(nodes.Call):
        target = call.node
        if (
            isinstance(target, nodes.Getattr)
            and target.attr == "get"
            and isinstance(target.node, nodes.Name)
            and target.node.name == mapping
            and call.args
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
        ):
            names.add(call.args[0].value)
    return names


SAMPLE_RECOMMENDATIONS = [
    {"sku": f"SAMPLE-{n}", "name": f"Sample product {n}", "category": "Sample", "price_minor": 1999}
    for n in range(1, RECOMMENDATIONS + 1)
]


class UnknownField(jinja2.TemplateError):
    """A sample render read a field its value never has (:class:`_SampleFields`)."""

    def __init__(self, name: str, offer: str) -> None:
        super().__init__(f"{name} is not there; {offer}")
        self.name = name
        self.offer = offer


class _SampleFields(dict[str, Any]):
    """A sample value (the customer, the occasion, a recommendation) that refuses a field it
    never has however the template reaches it (``customer.x``, an alias set or passed to a
    macro, ``|attr('x')``, ``recommendations[0].x``), raising :class:`UnknownField` where a
    plain dict gives an undefined value (which the save check takes for a value the sample
    occasion lacks). A field in ``known`` but absent stays undefined, as in a real render."""

    def __init__(self, values: Mapping[str, Any], *, label: str, known: Iterable[str], offer: str):
        super().__init__(values)
        self._label = label
        self._known = frozenset(known) | frozenset(values)
        self._offer = offer

    def _refuse(self, name: str) -> UnknownField:
        return UnknownField(f"{self._label}.{name}", self._offer)

    def __missing__(self, key: Any) -> Any:
        if isinstance(key, str) and key not in self._known:
            raise self._refuse(key)
        raise KeyError(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in self._known:
            raise AttributeError(name)  # a field is read as an item, as from a plain dict
        raise self._refuse(name)


def _sample_values(
    occasion: Mapping[str, Any], *, occasion_fields: frozenset[str] | None = None
) -> dict[str, Any]:
    """What a template gets for a sample customer (as :meth:`Renderer._values` fills it).
    The customer, the recommendations and, when ``occasion_fields`` says what every delivery
    carries, the occasion refuse a field they never have (:class:`_SampleFields`)."""
    values: dict[str, Any] = dict(occasion)
    given = f"use {_GIVEN_TO_ALL} or occasion.<name>"
    product = ", ".join(sorted(SAMPLE_RECOMMENDATIONS[0]))
    values.update(
        occasion=dict(occasion)
        if occasion_fields is None
        else _SampleFields(
            occasion,
            label="occasion",
            known=occasion_fields,
            offer=f"its occasion gives {', '.join(sorted(occasion_fields)) or 'nothing'}",
        ),
        first_name=FALLBACK_NAME,
        customer=_SampleFields(
            {"first_name": FALLBACK_NAME, "last_name": "", "locale": "en"},
            label="customer",
            known=CUSTOMER_FIELDS,
            offer=given,
        ),
        unsubscribe_url="https://example.com/u/sample",
        points=120,
        tier="Member",
        recommendations=[
            _SampleFields(
                item,
                label="recommendation",
                known=item,
                offer=f"a recommendation gives {product}",
            )
            for item in SAMPLE_RECOMMENDATIONS
        ],
    )
    return values


class _Compiled:
    """A template pair compiled once, with the names it uses (to skip unneeded lookups)."""

    def __init__(self, template: CampaignTemplate) -> None:
        self.channel = template.channel
        self.where = f"{template.channel} template '{template.locale}'"
        subject_env = _environment(template.channel, "subject")
        body_env = _environment(template.channel, "body")
        try:
            self.subject = subject_env.bounded(template.subject)
            self.body = body_env.bounded(template.body)
            self.names = meta.find_undeclared_variables(
                subject_env.parse(template.subject)
            ) | meta.find_undeclared_variables(body_env.parse(template.body))
        except TemplateSyntaxError as error:
            raise TemplateError(f"{self.where}: {error.message}") from error
        except LimitExceeded as error:
            raise TemplateError(f"{self.where}: {error}") from error

    def render(self, values: Mapping[str, Any]) -> tuple[str, str]:
        """(subject, body); raises TemplateError naming the part and what went wrong."""
        part = "subject"
        try:
            subject = _render_bounded(self.subject, values).strip()
            part = "body"
            body = _render_bounded(self.body, values)
        except TEMPLATE_FAULTS as error:
            raise TemplateError(f"the {part} of the {self.where}: {fault_reason(error)}") from error
        return subject, body


# Keyed by the template's text, so an edited template is compiled afresh.
_compiled: dict[tuple[str, str, str], _Compiled] = {}


def _compile(template: CampaignTemplate) -> _Compiled:
    key = (template.channel, template.subject, template.body)
    cached = _compiled.get(key)
    if cached is None:
        if len(_compiled) > 512:
            _compiled.clear()
        cached = _compiled[key] = _Compiled(template)
    return cached


# ---------------------------------------------------------------------- unsubscribe links


def unsubscribe_secret(settings: Settings | None = None) -> str:
    return (settings or get_settings()).session_secret()


@lru_cache(maxsize=8)
def _unsubscribe_signer(secret: str) -> Signer:
    # A key of its own (the salt), derived once: signing is then one HMAC per message.
    key = hashlib.sha256(_UNSUBSCRIBE_SALT.encode() + secret.encode()).digest()
    return Signer(key, key_derivation="none", digest_method=hashlib.sha256)


def unsubscribe_token(customer_id: str, purpose: str, *, secret: str) -> str:
    """``<customer id>.<purpose>.<signature>``: URL-safe, checked without a database read."""
    return _unsubscribe_signer(secret).sign(f"{customer_id}.{purpose}").decode()


def read_unsubscribe_token(token: str, *, secret: str) -> tuple[str, str] | None:
    """The (customer, purpose) a token was signed for, None when forged or malformed."""
    try:
        value = _unsubscribe_signer(secret).unsign(token).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    customer_id, _, purpose = value.rpartition(".")
    if not customer_id or purpose not in customers.CONSENT_PURPOSES:
        return None
    return customer_id, purpose


def consent_purpose(campaign: Campaign, endpoint: WebhookEndpoint | None = None) -> str | None:
    """The consent a campaign's messages go out under, which their unsubscribe link withdraws:
    a marketing campaign's channel consent; a service message's only where a consent governs
    it (:data:`SERVICE_CONSENTS`). None (no link, no List-Unsubscribe) for staff messages and
    other service messages, which withdrawing a consent would not stop."""
    if campaign.purpose == "service":
        return SERVICE_CONSENTS.get(campaign.key or "")
    if campaign.purpose != "marketing":
        return None
    if campaign.channel == "webhook":
        return endpoint.consent_purpose if endpoint is not None else "marketing_push"
    return CHANNEL_PURPOSES[campaign.channel]


def _page_url(token: str, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


# The paths on this installation Rapport's own producers put in an occasion, each with the
# address it becomes: a survey invitation's signed ``/s/<token>``, a CX alert's admin page.
# Only these become links: any other ``*_path`` (a tracked event's property a triggered
# campaign copies, a shop's own value) stays text, so no sender can put a link in a message.
LINK_PATHS = {"survey_path": "survey_url", "admin_path": "admin_url"}


def with_links(occasion: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """``occasion``'s values with each path of :data:`LINK_PATHS` (a path on this
    installation, starting with ``/``) also as its ``<name>_url`` under ``settings``'
    ``public_base_url``: a delivery keeps the path and its address is built when the message
    is rendered, so one queued before ``RAPPORT_PUBLIC_BASE_URL`` changed carries the new
    host. A ``<name>_url`` stored with the delivery (messages queued before) stays as it is."""
    values = dict(occasion)
    for name, link in LINK_PATHS.items():
        value = occasion.get(name)
        if isinstance(value, str) and value.startswith("/"):
            values.setdefault(link, f"{settings.public_base_url.rstrip('/')}{value}")
    return values


def unsubscribe_url(customer_id: str, purpose: str, *, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return _page_url(
        unsubscribe_token(customer_id, purpose, secret=unsubscribe_secret(settings)), settings
    )


def sample_unsubscribe_url(settings: Settings | None = None) -> str:
    """The link previews and test sends show where a customer's message has theirs: its page
    says it is a sample and changes nothing (a staff member's click must not unsubscribe the
    customer the test was rendered for)."""
    return _page_url(SAMPLE_TOKEN, settings or get_settings())


# ---------------------------------------------------------------------- rendering


class Renderer:
    """Renders one campaign's messages: templates read and compiled once, then one call per
    recipient. ``render`` raises TemplateError with the reason."""

    def __init__(
        self,
        db: Session,
        campaign: Campaign,
        *,
        channel: str | None = None,
        endpoint: WebhookEndpoint | None = None,
        settings: Settings | None = None,
        sample_links: bool = False,
    ) -> None:
        """``sample_links``: messages carry :func:`sample_unsubscribe_url` rather than the
        customer's own link (previews, test sends)."""
        self.db = db
        self.campaign = campaign
        self.channel = channel or campaign.channel
        self.settings = settings or get_settings()
        self.secret = unsubscribe_secret(self.settings)
        self.purpose = consent_purpose(campaign, endpoint)
        self.sample_link = sample_unsubscribe_url(self.settings) if sample_links else ""
        rows = list(
            db.scalars(
                select(CampaignTemplate)
                .where(CampaignTemplate.campaign_id == campaign.id)
                .order_by(CampaignTemplate.id)
            )
        )
        for_channel = [row for row in rows if row.channel == self.channel]
        self.templates = for_channel or rows
        # Loyalty facts loaded in bulk for a batch's recipients (``prefetch``); a customer
        # missing here is read one at a time (previews, test sends).
        self._points: dict[str, int] = {}
        self._tiers: dict[str, str] = {}

    def names(self) -> set[str]:
        """Every name this campaign's templates (any locale) use."""
        used: set[str] = set()
        for template in self.templates:
            try:
                used |= _compile(template).names
            except TemplateError:
                continue  # reported per message by ``render``
        return used

    def prefetch(self, customer_ids: Iterable[str]) -> None:
        """Load, in one query per 1,000, the points and tiers of ``customer_ids`` when the
        templates show them: a batch then renders without a query per recipient."""
        wanted = set(customer_ids)
        if not wanted:
            return
        used = self.names()
        if "points" in used:
            self._points.update(loyalty.balances(self.db, customer_ids=wanted))
        if "tier" in used:
            self._tiers.update(loyalty.tier_names(self.db, customer_ids=wanted))

    def _template(self, locale: str | None) -> _Compiled:
        if not self.templates:
            raise TemplateError(f"campaign {self.campaign.id} has no template")
        by_locale = {row.locale: row for row in self.templates}
        wanted = locale or ""
        chosen = (
            by_locale.get(wanted)
            or by_locale.get(wanted.split("-")[0])
            or next((row for row in self.templates if row.locale.split("-")[0] == wanted[:2]), None)
            or self.templates[0]
        )
        return _compile(chosen)

    def render(
        self,
        customer: CustomerFacts | None,
        occasion: Mapping[str, Any],
        *,
        locale: str | None = None,
    ) -> RenderedMessage:
        compiled = self._template(locale or (customer.locale if customer else None))
        link = ""
        if customer is not None and self.purpose is not None:
            link = self.sample_link or _page_url(
                unsubscribe_token(customer.customer_id, self.purpose, secret=self.secret),
                self.settings,
            )
        values = self._values(compiled.names, customer, occasion, link)
        subject, body = compiled.render(values)
        text = _html_to_text(body) if compiled.channel == "email" else ""
        return RenderedMessage(subject=subject, body=body, unsubscribe_url=link, text=text)

    def _values(
        self,
        names: set[str],
        customer: CustomerFacts | None,
        occasion: Mapping[str, Any],
        link: str,
    ) -> dict[str, Any]:
        first = (customer.first_name if customer else None) or FALLBACK_NAME
        occasion = with_links(occasion, self.settings)
        values: dict[str, Any] = dict(occasion)
        values.update(
            occasion=occasion,
            first_name=first,
            customer={
                "first_name": first,
                "last_name": (customer.last_name if customer else None) or "",
                "locale": customer.locale if customer else "en",
            },
            unsubscribe_url=link,
            points=0,
            tier="",
            recommendations=[],
        )
        if customer is None:
            return values
        customer_id = customer.customer_id
        if "points" in names:
            points = self._points.get(customer_id)
            if points is None:
                points = loyalty.balance(self.db, customer_id=customer_id)
            values["points"] = points
        if "tier" in names:
            tier = self._tiers.get(customer_id)
            if tier is None:
                tier = loyalty.member_tier(self.db, customer_id=customer_id).tier_name
            values["tier"] = tier
        if "recommendations" in names:
            values["recommendations"] = self._recommendations(customer.customer_id)
        return values

    def _recommendations(self, customer_id: str) -> list[dict[str, Any]]:
        if not customers.has_consent(self.db, customer_id=customer_id, purpose="personalization"):
            return []
        answer = recommend.recommend(
            self.db,
            request=recommend.Request(
                placement="email", customer_id=customer_id, limit=RECOMMENDATIONS
            ),
            data_dir=self.settings.data_dir,
        )
        if not answer.personalized:
            return []
        return [
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "price_minor": item.price_minor,
            }
            for item in answer.items
        ]


def render_message(
    db: Session,
    *,
    campaign: Campaign,
    customer_id: str | None,
    context: dict[str, Any],
    channel: str | None = None,
    locale: str | None = None,
) -> RenderedMessage:
    """The message ``campaign`` would send to ``customer_id`` (None: no customer, as for staff
    messages) with the occasion's ``context``; for previews and test sends, so its unsubscribe
    link is the inert sample (:func:`sample_unsubscribe_url`), never the customer's own. Raises
    NotFound for an unknown customer and InvalidInput (field 'template') when the template
    cannot render."""
    customer = None
    if customer_id is not None:
        customer = load_customers(db, [customer_id]).get(customer_id)
        if customer is None:
            raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    endpoint = (
        db.get(WebhookEndpoint, campaign.webhook_endpoint_id)
        if campaign.webhook_endpoint_id is not None
        else None
    )
    renderer = Renderer(db, campaign, channel=channel, endpoint=endpoint, sample_links=True)
    try:
        return renderer.render(customer, context, locale=locale)
    except TemplateError as error:
        raise InvalidInput(str(error), field="template") from error


_HIDDEN = re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(
    r"""<a\b[^>]*?href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL
)
_BREAK = re.compile(r"<(?:br|/?p|/?div|/?li|/?tr|/?h[1-6])\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def _html_to_text(body: str) -> str:
    """A plain-text alternative of an HTML body (bodies without tags pass through): a link
    is its text followed by its address, block ends become line breaks. Regular expressions
    rather than an HTML parser: this runs once per email."""
    if "<" not in body:
        return html.unescape(body)
    addresses: list[str] = []

    def mark(match: re.Match[str]) -> str:
        # A placeholder, not "<address>" yet: the tag stripping below would take it for a tag.
        addresses.append(html.unescape(match.group(1)))
        return f"{match.group(2)}\x00{len(addresses) - 1}\x00"

    text = _LINK.sub(mark, _HIDDEN.sub("", body))
    text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
    text = _PLACEHOLDER.sub(lambda match: f" <{addresses[int(match.group(1))]}>", text)
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
