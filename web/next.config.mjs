import { PHASE_DEVELOPMENT_SERVER } from "next/constants.js";

/**
 * A static export (web/out) that `ticklane api` serves at `/`: every page is a client
 * component that reads the API at run time (same origin), nothing is fetched at build time.
 *
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
  eslint: { ignoreDuringBuilds: true },
};

/** `next dev` only: with TICKLANE_API=http://127.0.0.1:8080, `/api/...` goes to that API. */
export default function config(phase) {
  const api = process.env.TICKLANE_API;
  if (phase !== PHASE_DEVELOPMENT_SERVER || !api) return nextConfig;
  return {
    ...nextConfig,
    skipTrailingSlashRedirect: true,
    rewrites: async () => [{ source: "/api/:path*", destination: `${api.replace(/\/$/, "")}/api/:path*` }],
  };
}
