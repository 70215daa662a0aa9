/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Node's global, declared here so the app's tsconfig needs no @types/node.
declare const process: { env: Record<string, string | undefined> };

// `npm run dev` proxies the API and the hub to a `diquis serve` on port 8000.
const backend = process.env.DIQUIS_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    proxy: {
      "/api": backend,
      "/hubs": { target: backend, ws: true },
      "/hangfire": backend,
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
