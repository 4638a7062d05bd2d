"""A return form whose one-time token is not one the page gave out (crafted, over 200
characters) is told the form is not valid, where it was told it was "sent already"."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.orders.test_admin_returns import _bought, _error, _return_form, _returned
from tests.platform.admin_forms import post_form, typed


@pytest.mark.parametrize("token", ["x" * 201, "a" * 500, "not a token!"])
def test_a_return_form_with_a_token_we_did_not_give_out_is_not_valid(
    admin: TestClient, db: Session, token: str
) -> None:
    # given a return form whose token was replaced
    customer_id, order_id = _bought(db)
    fields = typed(_return_form(admin, customer_id, order_id), "token", token)
    fields = typed(typed(fields, "quantity_1", "3"), "reason", "damaged")
    # when it is sent
    answer = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)
    # then the form is not valid, not "sent already", and nothing is returned
    assert answer.status_code == 422
    said = _error(answer.text, "lines")
    assert said == "This form is not valid (not one this page gave out); open the orders page again"
    assert "sent already" not in answer.text
    assert _returned(db, order_id) == []
