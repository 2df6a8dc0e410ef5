"""Alert notifications: MQTT and webhooks behind bounded, retrying outboxes (DESIGN 8).

``notifier.Notifier`` is what the app uses; ``config.NotifyConfig`` is the ``[notify]``
section. Only ``mqtt.py`` and ``mqtt_publish.py`` import aiomqtt. This package's ``__init__``
stays light (config only), so loading the configuration does not import the MQTT and HTTP
clients.
"""

from monitor.notify.config import MqttConfig, NotifyConfig, WebhookConfig

__all__ = ["MqttConfig", "NotifyConfig", "WebhookConfig"]
