"""The platform rotates its signing key: the exam service fetches the JWKS again when it meets a
key id it has not seen, for ID tokens and logout tokens alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idp.oauth.keys import KeyStore, key_store

from .conftest import Browser, sign_in
from .test_backchannel import LogoutTokens, signed_in


@pytest.fixture
def keys_dir(tmp_path):
    """Keys of this module only: rotating them must not touch the suite's shared keys."""
    path = tmp_path / "rotating-keys"
    KeyStore(path / "signing", timedelta(hours=1)).rotate("RS256")
    (path / "pii.key").write_text("33" * 32)
    return path


def test_id_token_signed_by_a_new_key_after_rotation(exam, citizen):
    sign_in(Browser(), exam, citizen["username"])  # the exam service has cached the JWKS now
    with exam.provider.app.app_context():
        old = key_store().current().kid
        new = key_store().rotate("RS256").kid
    assert old != new
    page = sign_in(Browser(), exam, citizen["username"])
    assert "考生信息" in page.text
    with exam.exam.app.app_context():
        from joserfc.jws import extract_compact

        from clients.exam.extensions import db as exam_db
        from clients.exam.models import CandidateLogin
        from clients.exam.sealing import seal

        latest = exam_db.session.query(CandidateLogin).order_by(CandidateLogin.id.desc()).first()
        id_token = seal().open(latest.id_token_sealed)
    assert extract_compact(id_token.encode()).protected["kid"] == new


def test_logout_token_after_the_platform_rotated_its_key(exam, citizen):
    """A token signed by a key newer than the cached JWKS makes the service fetch the JWKS again."""
    browser = Browser()
    sign_in(browser, exam, citizen["username"])  # the exam service has cached the JWKS now
    # (a second browser logs in after the rotation below; this one is ended by the new key)
    with exam.provider.app.app_context():
        key_store().rotate("RS256")
    tokens = LogoutTokens(exam)  # signs with the new current key
    assert tokens.post(tokens.sign(tokens.claims(sub=citizen["sub"]))).status_code == 200
    assert not signed_in(browser, exam)
