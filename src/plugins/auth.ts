// Bearer-key authentication for every route except GET /health, checked in `onRequest`, before
// the body is read. @fastify/bearer-auth compares keys in constant time.
import bearerAuth from "@fastify/bearer-auth";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";

export interface AuthOptions {
  apiKeys: string[];
}

/** Routes that answer without a key: the health check, for load balancers and probes. */
function isPublic(request: FastifyRequest): boolean {
  return request.routeOptions.url === "/health";
}

async function authPlugin(app: FastifyInstance, options: AuthOptions): Promise<void> {
  if (options.apiKeys.length === 0) return;

  await app.register(bearerAuth, {
    keys: new Set(options.apiKeys),
    addHook: false,
    // RFC 7235 makes the scheme name case-insensitive ("bearer" is as valid as "Bearer").
    specCompliance: "rfc6749",
    verifyErrorLogLevel: "info",
  });
  app.addHook("onRequest", (request, reply, done) => {
    if (isPublic(request)) {
      done();
      return;
    }
    app.verifyBearerAuth!(request, reply, done);
  });
}

export default fp(authPlugin, { name: "earshot-auth" });
