import { fileURLToPath } from "node:url";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [vue()],
  base: "/",
  build: {
    outDir: fileURLToPath(new URL("../frontend/static", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    // No inlined data: assets and no external requests: the page works on a closed network.
    assetsInlineLimit: 0,
  },
});
