// The API's interactive documentation (Swagger UI, served by the console). "Try it out"
// requests go with the signed-in user's session cookie, so writes carry the page's CSRF token.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  const token = document.querySelector('meta[name="csrf-token"]');
  window.SwaggerUIBundle({
    url: root.dataset.spec,
    domNode: root,
    deepLinking: true,
    requestInterceptor: (request) => {
      const method = (request.method || "GET").toUpperCase();
      if (token && !["GET", "HEAD", "OPTIONS"].includes(method)) {
        request.headers["X-CSRFToken"] = token.content;
      }
      return request;
    },
  });
});
