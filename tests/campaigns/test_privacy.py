"""The campaigns domain's part of an erasure: what it deletes keeps the counts true."""

from __future__ import annotations

from rapport.campaigns import service as campaigns
from rapport.flows import privacy
from tests.campaigns.segments.factories import make_customer
from tests.conftest import auth

EMAIL_OK = {"match": "all", "conditions": [{"kind": "consent", "purpose": "marketing_email"}]}


def test_an_erasure_takes_the_person_off_each_segments_member_count(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    # given two segments that both hold the person and someone else
    person, other = make_customer(db), make_customer(db)
    segments = [campaigns.create_segment(db, name=name, definition=EMAIL_OK) for name in ("A", "B")]
    before = {s.id: s.member_count for s in segments}
    assert all(count >= 2 for count in before.values())
    # when the person is erased
    privacy.erase_customer(db, customer_id=person, requested_by="dpo")
    # then every segment that held them counts one member fewer, as its member list does
    key = auth(api_key("read"))
    for segment_id, count in before.items():
        answer = client.get(f"/v1/segments/{segment_id}", headers=key).json()
        members = client.get(f"/v1/segments/{segment_id}/members", headers=key).json()
        assert answer["member_count"] == count - 1
        listed = members["members"]
        assert person not in listed
        assert other in listed
        assert answer["member_count"] == len(listed)
