"""单位用户注册: the forms of its own steps."""
