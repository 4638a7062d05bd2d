"""Long admin lists a page at a time: ``?page=`` and ``?per_page=`` (10 to 200), and the
``pager`` macro that links the pages with the list's filters kept."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    per_page: int = 50

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def of(self, total: int) -> Paging:
        """This request's page of a list of ``total`` rows (a page past the end shows the
        last)."""
        last = max(1, math.ceil(total / self.per_page))
        return Paging(page=min(self.page, last), per_page=self.per_page, total=total)


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int
    total: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else self.offset + 1

    @property
    def last_row(self) -> int:
        return min(self.total, self.offset + self.per_page)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=10, le=200, description="Rows per page")] = 50,
) -> PageRequest:
    return PageRequest(page=page, per_page=per_page)


PageParams = Annotated[PageRequest, Depends(page_request)]
