"""The audit log's event codes in Chinese, for the pages an administrator or auditor reads.

The log itself keeps the stable English codes (filters, CSV export, log shippers and alerts match
on them); pages show the name below with the code on hover.  An event missing here is shown by
its code, and tests/admin/test_audit.py fails on any code the application records without one.
"""

from __future__ import annotations

EVENT_NAMES: dict[str, str] = {
    # citizens: registration, login, the user centre
    "register": "用户注册",
    "registry.check": "单位登记信息核验",
    "login": "登录",
    "logout": "退出登录",
    "logout.backchannel": "通知应用系统退出",
    "account.created": "创建账号",
    "account.lockout": "密码错误次数过多锁定",
    "account.logged_out": "强制下线",
    "password.check": "核对当前密码",
    "password.changed": "修改密码",
    "password.reset": "找回密码：重置密码",
    "profile.change": "变更用户信息：核验",
    "profile.changed": "变更用户信息",
    "unit.handler_change": "变更经办人：核验",
    "unit.handler_changed": "变更经办人",
    "unit.name_change": "变更单位名称：核验",
    "unit.name_changed": "变更单位名称",
    "phone.change": "更换手机号：核验",
    "phone.changed": "更换手机号",
    "security_questions.set": "设置密保问题",
    "sms.sent": "发送短信验证码",
    "recovery.lookup": "找回：验证身份",
    "recovery.verify": "找回：验证",
    "recovery.username_sent": "找回用户名：短信发送用户名",
    # relying systems and tokens
    "consent": "授权应用系统",
    "consent.revoked": "撤销授权",
    "token.issued": "签发令牌",
    "token.revoked": "撤销令牌",
    "token.code_replay": "授权码重复使用",
    "token.refresh_reuse": "刷新令牌重复使用",
    # administration
    "admin.access": "进入管理后台",
    "admin.user_search": "查询用户",
    "admin.user_viewed": "查看用户",
    "account.locked": "管理员锁定账号",
    "account.unlocked": "管理员解锁账号",
    "account.disabled": "停用账号",
    "account.enabled": "启用账号",
    "account.role_changed": "变更管理角色",
    "client.created": "新增应用系统",
    "client.updated": "修改应用系统",
    "client.disabled": "停用应用系统",
    "client.enabled": "启用应用系统",
    "client.secret_rotated": "重新生成应用系统密钥",
    "client.exported": "导出应用系统配置",
    "audit.exported": "导出审计日志",
    "audit.pruned": "清理审计日志",
    # staff second factors
    "mfa.enrolled": "绑定第二因素",
    "mfa.enrolment": "绑定第二因素",
    "mfa.verified": "第二因素验证",
    "mfa.removed": "解除第二因素",
    "mfa.reset": "重置第二因素",
    "mfa.recovery_codes_issued": "生成备用恢复码",
    "account.closed": "注销账号",
    "account.closed_notice": "注销账号短信通知",
    "privacy.consent_given": "同意个人信息处理",
    "privacy.consent_claimed": "个人信息处理同意归入账号",
    "privacy.data_exported": "下载我的数据",
}


def event_name(code: str) -> str:
    """The Chinese name of an event code; the code itself when it has none."""
    return EVENT_NAMES.get(code, code)
