// Service worker: shows the Web Push messages the service sends (title, body, one per event).
self.addEventListener("push", (event) => {
  const message = event.data ? event.data.json() : { title: "Heartbeat", body: "" };
  event.waitUntil(
    self.registration.showNotification(message.title, { body: message.body, tag: message.tag }),
  );
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("./#/notifications"));
});
