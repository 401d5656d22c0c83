"""找回用户名, 找回密码 and 手机号已停用?: pages over the flows of ``idp.flows.recovery``."""
