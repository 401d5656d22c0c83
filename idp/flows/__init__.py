"""Multi-step flows (registration now; recovery and phone change reuse the machinery):
explicit state machines stored server-side under a flow id with an expiry, the way Keycloak's
authentication flows keep their notes.  ``base`` is the machinery, one module per flow."""

from .base import Flow, FlowDefinition, FlowExpired, StepNotReached

__all__ = ["Flow", "FlowDefinition", "FlowExpired", "StepNotReached"]
