from __future__ import annotations

from idp.extensions import db
from idp.models import User
from idp.services.identity import passwords

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login


def test_production_parameters_are_owasp_argon2id():
    from idp.config import BaseConfig

    assert (BaseConfig.ARGON2_MEMORY_KIB, BaseConfig.ARGON2_TIME_COST, BaseConfig.ARGON2_PARALLELISM) == (19456, 2, 1)


def test_hash_is_argon2id_and_rehashed_on_login_when_parameters_change(app, client, user):
    with app.app_context():
        old_hash = db.session.get(User, user.id).password_hash
    assert old_hash.startswith("$argon2id$")
    assert "m=1024,t=1,p=1" in old_hash
    app.config["ARGON2_TIME_COST"] = 2
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    with app.app_context():
        new_hash = db.session.get(User, user.id).password_hash
    assert "m=1024,t=2,p=1" in new_hash


def test_password_policy_lists_every_problem(app):
    with app.app_context():
        assert passwords.password_problems("Kaoshi#2026ok", "zhangsan") == []
        problems = passwords.password_problems("abc", "zhangsan")
        assert any("长度" in p for p in problems) and any("三种" in p for p in problems)
        assert passwords.password_problems("Zhangsan#2026", "zhangsan") == ["密码不能包含用户名"]
        assert "密码过于常见，请更换" in passwords.password_problems("P@ssw0rd", "someone")
