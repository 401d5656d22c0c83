"""The citizen's rights (PIPL): the privacy notice, 个人信息与隐私, 下载我的数据, 注销账号."""
