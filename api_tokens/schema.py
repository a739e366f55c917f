"""How the OpenAPI schema (and so /api/docs/'s "Authorize" button) describes the token authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api_tokens.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /api/token/: `Authorization: Bearer <token>` (or `Token <token>`).",
        }
