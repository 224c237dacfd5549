// A minimal MCP stdio server (2025-11-25, newline-delimited JSON-RPC, no SDK) whose tool
// list changes: after its first tools/call it adds a tool and sends
// notifications/tools/list_changed, as a server that loads plugins would.
import { createInterface } from "node:readline";

const tools = [{ name: "first", description: "The first tool", inputSchema: { type: "object" } }];
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");

createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return; // notifications
  switch (msg.method) {
    case "initialize":
      return send({ jsonrpc: "2.0", id: msg.id, result: {
        protocolVersion: "2025-11-25",
        capabilities: { tools: { listChanged: true } },
        serverInfo: { name: "changing-tools", version: "1.0.0" } } });
    case "tools/list":
      return send({ jsonrpc: "2.0", id: msg.id, result: { tools } });
    case "tools/call":
      if (tools.length === 1) {
        tools.push({ name: "second", description: "Added later", inputSchema: { type: "object" } });
        send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
      }
      return send({ jsonrpc: "2.0", id: msg.id, result: { content: [{ type: "text", text: "called " + msg.params.name }] } });
    default:
      return send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found: " + msg.method } });
  }
});
