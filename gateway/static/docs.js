// /docs: Swagger UI over /openapi.json, served by the gateway itself (no CDN: the library
// is the fastapi-offline package's copy, mounted at /static-docs). "Authorize" takes a
// department key (Bearer owg_...).

window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
});
