// Renders /v1/openapi.json (the edge's own contract) with Swagger UI; every asset is served by the edge.
window.ui = SwaggerUIBundle({
  url: "/v1/openapi.json",
  dom_id: "#api-docs",
  deepLinking: true,
  tryItOutEnabled: false,
  persistAuthorization: false,
  validatorUrl: null, // never call swagger.io: the page loads nothing from outside the edge
});
