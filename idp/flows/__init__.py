"""Multi-step flows (registration, recovery, 手机号已停用?, 变更用户信息): explicit state machines of
named steps stored server-side under a flow id with an expiry, the way Keycloak's authentication
flows keep their notes.  ``base`` is the engine, one module per flow lists its steps."""

from .base import Flow, FlowDefinition, FlowExpired, FlowFinished, Step, StepNotReached

__all__ = ["Flow", "FlowDefinition", "FlowExpired", "FlowFinished", "Step", "StepNotReached"]
