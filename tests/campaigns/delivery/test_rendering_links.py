"""Only the paths Rapport's own producers put in an occasion (a survey's signed path, a CX
alert's admin page) become addresses under RAPPORT_PUBLIC_BASE_URL; any other ``*_path``
(a tracked property a triggered campaign copies) stays text and never becomes a link."""

from __future__ import annotations

from rapport.campaigns.delivery.rendering import with_links
from rapport.platform.settings import get_settings


def test_only_rapports_own_paths_become_links() -> None:
    settings = get_settings()
    base = settings.public_base_url.rstrip("/")
    occasion = {
        "survey_path": "/s/abc",
        "admin_path": "/admin/feedback",
        "promo_path": "/phish/login",
        "return_path": "/evil",
        "event": {"landing_path": "/x"},
    }
    linked = with_links(occasion, settings)
    assert linked == {
        **occasion,
        "survey_url": f"{base}/s/abc",
        "admin_url": f"{base}/admin/feedback",
    }
    assert "promo_url" not in linked
    assert "return_url" not in linked


def test_a_stored_address_and_a_path_not_on_this_installation_are_kept_as_they_are() -> None:
    settings = get_settings()
    occasion = {"survey_path": "/s/new", "survey_url": "https://old.example/s/old"}
    assert with_links(occasion, settings)["survey_url"] == "https://old.example/s/old"
    assert "admin_url" not in with_links({"admin_path": "https://elsewhere.example"}, settings)
