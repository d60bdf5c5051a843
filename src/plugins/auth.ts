// Bearer-key authentication for every route except GET /health, checked in `onRequest`, before
// the body is read. @fastify/bearer-auth compares keys in constant time.
import bearerAuth from "@fastify/bearer-auth";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";

export interface AuthOptions {
  apiKeys: string[];
}

/** Routes served without a key: the health check, for load balancers and probes. */
function isPublic(request: FastifyRequest): boolean {
  return request.routeOptions.url === "/health";
}

/**
 * Checks the API key of a request that the `onRequest` hook never saw, such as one whose URL the
 * router rejected. Calls `done` with the 401 error, or with none when the key is valid or
 * authentication is off. Uses the same constant-time comparison as the hook.
 */
export function verifyApiKey(
  request: FastifyRequest,
  reply: FastifyReply,
  done: (error?: Error) => void,
): void {
  const verifyBearerAuth = request.server.verifyBearerAuth;
  if (!verifyBearerAuth) {
    done();
    return;
  }
  verifyBearerAuth(request, reply, done);
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
