"""登录设备: a login's User-Agent header as a citizen reads it ("Chrome · Windows").

Parsed by ``ua-parser`` (the maintained port of Browserscope's regexes, updated with new
browsers); the raw header stays in the session record and the audit log for staff.
"""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

# names a citizen knows better than the parser's; anything else is shown as the parser names it
_BROWSERS = {"WeChat Browser": "微信", "QQ Browser": "QQ浏览器", "QQ Browser Mobile": "QQ浏览器",
             "UC Browser": "UC浏览器", "Mobile Safari": "Safari", "Chrome Mobile": "Chrome",
             "Chrome Mobile WebView": "Chrome", "Chrome Mobile iOS": "Chrome", "Firefox Mobile": "Firefox",
             "Edge Mobile": "Edge", "Baidu Browser": "百度浏览器", "Sogou Explorer": "搜狗浏览器",
             "HeadlessChrome": "Chrome"}
_SYSTEMS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
UNKNOWN = "未知设备"


@lru_cache(maxsize=2048)
def describe(user_agent: str | None) -> str:
    """"Chrome · Windows", "微信 · iOS", or 未知设备 when nothing is recognised."""
    if not user_agent:
        return UNKNOWN
    result = parse(user_agent[:512])
    parts = []
    if result.user_agent and result.user_agent.family != "Other":
        parts.append(_BROWSERS.get(result.user_agent.family, result.user_agent.family))
    if result.os and result.os.family != "Other":
        parts.append(_SYSTEMS.get(result.os.family, result.os.family))
    return " · ".join(parts) or UNKNOWN
