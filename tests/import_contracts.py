"""The "faces" import-linter contract: code outside a domain reaches it only through the
domain's public faces (``service`` and ``events``), and only the composition root mounts its
entry points (routers, admin pages, jobs, tables, commands).

import-linter's built-in contracts forbid or allow whole packages; none says "everything but
these two modules", so this one does, and names each offending import with its line.
"""

from __future__ import annotations

from dataclasses import dataclass

import grimp
from importlinter import Contract, ContractCheck, fields, output


@dataclass(frozen=True)
class IllegalImport:
    importer: str
    imported: str
    domain: str
    line_numbers: tuple[int, ...]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class FacesContract(Contract):
    """Options:

    - ``domains``: the domain packages (``rapport.loyalty``, ...).
    - ``faces``: module names every other package may import (``service``, ``events``).
    - ``mounts``: module names only ``mounting_modules`` may import as well (``api``, ...).
    - ``mounting_modules``: the composition root that wires the domains together.
    """

    type_name = "faces"

    domains = fields.ListField(subfield=fields.StringField())
    faces = fields.ListField(subfield=fields.StringField())
    mounts = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    mounting_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        domains: list[str] = list(self.domains)  # type: ignore[call-overload]
        faces: list[str] = list(self.faces)  # type: ignore[call-overload]
        mounts: list[str] = list(self.mounts)  # type: ignore[call-overload]
        mounting: list[str] = list(self.mounting_modules)  # type: ignore[call-overload]
        illegal: list[IllegalImport] = []
        for domain in domains:
            public = [f"{domain}.{face}" for face in faces]
            mounted = [f"{domain}.{mount}" for mount in mounts]
            members = {domain, *graph.find_descendants(domain)}
            for imported in sorted(members):
                if any(_within(imported, face) for face in public):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if _within(importer, domain):
                        continue
                    if any(_within(importer, root) for root in mounting) and any(
                        _within(imported, mount) for mount in mounted
                    ):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    illegal.append(
                        IllegalImport(
                            importer=importer,
                            imported=imported,
                            domain=domain,
                            line_numbers=tuple(detail["line_number"] for detail in details),
                        )
                    )
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        faces = " and ".join(str(face) for face in self.faces)  # type: ignore[attr-defined]
        for link in check.metadata["illegal"]:
            lines = ", ".join(map(str, link.line_numbers))
            output.print_error(
                f"- {link.importer} -> {link.imported} (l.{lines}): reach {link.domain} "
                f"through its {faces}",
                bold=False,
            )
            output.new_line()
