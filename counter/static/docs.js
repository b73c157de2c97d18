// /docs: Swagger UI over /openapi.json, served by the app itself (no CDN: the library is
// the fastapi-offline package's copy, mounted at /static-docs). "Try it out" requests
// carry the session's CSRF token, like the pages' own requests.

let csrf = null;
try {
  const r = await fetch("/api/session", { headers: { Accept: "application/json" } });
  if (r.ok) csrf = (await r.json()).csrf_token;
} catch {
  csrf = null;
}

window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  requestInterceptor: (req) => {
    if (csrf && req.method && req.method.toUpperCase() !== "GET") req.headers["X-CSRF-Token"] = csrf;
    return req;
  },
});
