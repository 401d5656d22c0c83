"""The national-cryptography option (``IDP_PII_CIPHER=sm4``): registration stores SM4-GCM
ciphertext and HMAC-SM3 lookup hashes, checked here against the primitives directly."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from idp.errors import DocumentTaken
from idp.extensions import db
from idp.models import User
from idp.sandbox import DEMO_CITIZEN
from idp.services.identity import pii
from idp.services.accounts.records import find_by_document
from idp.services.registration import register_account

from ..conftest import DEFAULT_PASSWORD, clean_external_db, make_app

MASTER = bytes.fromhex("11" * 32)  # tests/conftest.py writes this key


def _hkdf(info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(MASTER)


def _sm4_gcm_decrypt(field: str, blob: bytes) -> str:
    assert blob[:1] == b"\x02"  # the SM4 tag
    nonce, body = blob[1:13], blob[13:]
    decryptor = Cipher(algorithms.SM4(_hkdf(b"idp pii sm4-gcm", 16)), modes.GCM(nonce, body[-16:])).decryptor()
    decryptor.authenticate_additional_data(field.encode())
    return (decryptor.update(body[:-16]) + decryptor.finalize()).decode()


def _hmac_sm3(field: str, value: str) -> str:
    mac = hmac.HMAC(_hkdf(b"idp pii lookup sm4", 32), hashes.SM3())
    mac.update(field.encode() + b"\x00" + value.encode())
    return mac.finalize().hex()


@pytest.fixture
def sm4_app(keys_dir):
    app = make_app(keys_dir, PII_CIPHER="sm4")
    yield app
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_registration_under_sm4(sm4_app):
    with sm4_app.test_request_context("/"):
        assert pii.cipher().cipher == "sm4"
        register_account(DEMO_CITIZEN.new_account("guomi2026", DEFAULT_PASSWORD))
        user = db.session.scalars(select(User)).one()
        assert _sm4_gcm_decrypt("id_number", user.id_number_enc) == DEMO_CITIZEN.id_number
        assert _sm4_gcm_decrypt("phone", user.phone_enc) == DEMO_CITIZEN.phone
        assert _sm4_gcm_decrypt("card", user.card_enc) == DEMO_CITIZEN.card_number
        assert user.id_number_hash == _hmac_sm3("id_number", DEMO_CITIZEN.id_number)
        assert user.phone_hash == _hmac_sm3("phone", DEMO_CITIZEN.phone)
        assert find_by_document("resident_id", DEMO_CITIZEN.id_number).id == user.id
        with pytest.raises(DocumentTaken):
            register_account(DEMO_CITIZEN.new_account("guomi2027", DEFAULT_PASSWORD))


def test_ciphertext_of_one_field_cannot_pass_as_another(sm4_app):
    with sm4_app.app_context():
        box = pii.cipher()
        blob = box.encrypt("phone", "13800138000")
        assert box.decrypt("phone", blob) == "13800138000"
        with pytest.raises(InvalidTag):
            box.decrypt("id_number", blob)
        assert box.encrypt("phone", "13800138000") != blob  # fresh nonce each time


def test_aes_and_sm4_lookups_differ(app, sm4_app):
    with app.app_context():
        aes = pii.cipher().lookup_hash("phone", "13800138000")
    with sm4_app.app_context():
        sm4 = pii.cipher().lookup_hash("phone", "13800138000")
    assert aes != sm4 and len(aes) == len(sm4) == 64
