import asyncio, sys, threading, json, collections, logging
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig
got = []
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        b = self.rfile.read(int(self.headers['content-length'])); got.append(json.loads(b)["title"])
        self.send_response(200); self.send_header("content-length","0"); self.end_headers()
    def log_message(self,*a): pass
srv = ThreadingHTTPServer(("127.0.0.1",0),H); threading.Thread(target=srv.serve_forever,daemon=True).start()
async def main(store):
    m = SystemMonitor(MonitoringConfig(alert_store_path=store, default_alert_rules=False,
        notification_config=NotificationConfig(console=False, webhook_urls=[f"http://127.0.0.1:{srv.server_address[1]}/x"],
        storm_threshold=10**5, group_wait=0, retry_initial_delay=0.05, retry_max_delay=0.3)))
    m.alert_manager.evaluator._gate.max_per_minute = 10**9
    await m.start()
    for i in range(5):
        await m.create_custom_alert(f"post{i}", "m", AlertSeverity.CRITICAL)
    ok = await m.notification_dispatcher.drain(15)
    st = m.alert_manager.store
    print("RESULT", json.dumps({"drained": ok, "missing": [f"post{i}" for i in range(5) if f"post{i}" not in got],
          "pre": len([g for g in got if g.startswith("pre")]), "moved": str(st.moved_aside), "fallback": st.fallback_reason}))
    await m.stop(); m.close()
asyncio.run(main(sys.argv[1]))
