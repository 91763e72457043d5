{{/* Names, labels and the pieces every ticklane container shares. */}}

{{- define "ticklane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ticklane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A resource name: the full name and a suffix, kept within 63 characters. */}}
{{- define "ticklane.resourceName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "ticklane.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ticklane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: (list $ "agents"). */}}
{{- define "ticklane.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "ticklane.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component: (list $ "agents"). */}}
{{- define "ticklane.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "ticklane.chart" $root }}
{{ include "ticklane.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: ticklane
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ticklane.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ticklane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ticklane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secret names: an existing Secret when one is named, else the chart's own. */}}
{{- define "ticklane.kafkaSecretName" -}}
{{- default (include "ticklane.resourceName" (list . "kafka")) .Values.kafka.sasl.existingSecret -}}
{{- end -}}
{{- define "ticklane.databentoSecretName" -}}
{{- default (include "ticklane.resourceName" (list . "databento")) .Values.producer.databento.existingSecret -}}
{{- end -}}
{{- define "ticklane.ledgerSecretName" -}}
{{- default (include "ticklane.resourceName" (list . "ledger")) .Values.executor.ledger.postgres.existingSecret -}}
{{- end -}}
{{- define "ticklane.apiStoreSecretName" -}}
{{- default (include "ticklane.resourceName" (list . "api-store")) .Values.api.store.postgres.existingSecret -}}
{{- end -}}
{{- define "ticklane.apiUsersSecretName" -}}
{{- default (include "ticklane.resourceName" (list . "api-users")) .Values.api.users.existingSecret -}}
{{- end -}}
{{/* (list $ $account) */}}
{{- define "ticklane.accountSecretName" -}}
{{- $account := index . 1 -}}
{{- $credentials := $account.credentials | default dict -}}
{{- default (include "ticklane.resourceName" (list (index . 0) (printf "executor-%s" $account.name))) $credentials.existingSecret -}}
{{- end -}}

{{/* Per-account defaults: the consumer group and the ledger's PostgreSQL schema. */}}
{{- define "ticklane.accountGroupId" -}}
{{- default (printf "ticklane-executor-%s" .name) .groupId -}}
{{- end -}}
{{- define "ticklane.accountLedgerSchema" -}}
{{- default (printf "ticklane_%s" (.name | replace "-" "_")) .ledgerSchema -}}
{{- end -}}

{{/*
A YAML value as TOML. YAML numbers reach templates as floats: whole ones are written as
integers, because ticklane's integer settings and strategy parameters refuse 12.0.
Null values are left out (TOML has no null: the setting keeps its default).
*/}}
{{- define "ticklane.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "ticklane.toml.value" -}}
{{- $kind := kindOf . -}}
{{- if eq $kind "map" -}}
{{- $value := . -}}
{{- $entries := list -}}
{{- range $key := keys $value | sortAlpha -}}
{{- $item := index $value $key -}}
{{- if ne (kindOf $item) "invalid" -}}
{{- $entries = append $entries (printf "%s = %s" (include "ticklane.toml.key" $key) (include "ticklane.toml.value" $item)) -}}
{{- end -}}
{{- end -}}
{{- printf "{ %s }" (join ", " $entries) -}}
{{- else if eq $kind "slice" -}}
{{- $items := list -}}
{{- range . -}}
{{- $items = append $items (include "ticklane.toml.value" .) -}}
{{- end -}}
{{- printf "[%s]" (join ", " $items) -}}
{{- else if eq $kind "string" -}}
{{- toJson . -}}
{{- else if eq $kind "bool" -}}
{{- . -}}
{{- else if eq $kind "float64" -}}
{{- if eq (float64 (int64 .)) . -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if or (eq $kind "int") (eq $kind "int64") -}}
{{- . -}}
{{- else -}}
{{- fail (printf "config: cannot write a %s value as TOML" $kind) -}}
{{- end -}}
{{- end -}}

{{/* `key = value`; a list of tables one table a line, for whoever reads the ConfigMap. (list key value) */}}
{{- define "ticklane.toml.entry" -}}
{{- $key := index . 0 -}}
{{- $value := index . 1 -}}
{{- if and (eq (kindOf $value) "slice") $value (eq (kindOf (first $value)) "map") -}}
{{ include "ticklane.toml.key" $key }} = [
{{- range $value }}
  {{ include "ticklane.toml.value" . }},
{{- end }}
]
{{- else -}}
{{ include "ticklane.toml.key" $key }} = {{ include "ticklane.toml.value" $value }}
{{- end -}}
{{- end -}}

{{/* A settings document: top-level scalars, then one [table] per section. */}}
{{- define "ticklane.toml" -}}
{{- $config := . -}}
{{- range $key := keys $config | sortAlpha }}
{{- $value := index $config $key }}
{{- if and (ne (kindOf $value) "map") (ne (kindOf $value) "invalid") }}
{{ include "ticklane.toml.entry" (list $key $value) }}
{{- end }}
{{- end }}
{{- range $section := keys $config | sortAlpha }}
{{- $table := index $config $section }}
{{- if eq (kindOf $table) "map" }}

[{{ include "ticklane.toml.key" $section }}]
{{- range $key := keys $table | sortAlpha }}
{{- $value := index $table $key }}
{{- if ne (kindOf $value) "invalid" }}
{{ include "ticklane.toml.entry" (list $key $value) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The settings of one account's executor: config with the account's executor settings over it. */}}
{{- define "ticklane.accountConfig" -}}
{{- $root := index . 0 -}}
{{- $account := index . 1 -}}
{{- $config := deepCopy $root.Values.config -}}
{{- $executor := mergeOverwrite (deepCopy (default dict $config.executor)) (deepCopy (default dict $account.config)) -}}
{{- $_ := set $config "executor" $executor -}}
{{- include "ticklane.toml" $config -}}
{{- end -}}

{{/*
The environment every ticklane container gets: data dir, Kafka connection (the SASL
password from its Secret), health port. (dict "root" $ "port" 9100 "kafkaSecret" name)
*/}}
{{- define "ticklane.env" -}}
{{- $root := .root -}}
{{- $kafka := $root.Values.kafka -}}
- name: TICKLANE_DATA_DIR
  value: /var/lib/ticklane
- name: TICKLANE_HEALTH_PORT
  value: {{ .port | quote }}
- name: TICKLANE_KAFKA__BOOTSTRAP_SERVERS
  value: {{ $kafka.bootstrapServers | quote }}
- name: TICKLANE_KAFKA__SECURITY_PROTOCOL
  value: {{ $kafka.securityProtocol | quote }}
{{- if $kafka.saslMechanism }}
- name: TICKLANE_KAFKA__SASL_MECHANISM
  value: {{ $kafka.saslMechanism | quote }}
{{- end }}
{{- if $kafka.sasl.username }}
- name: TICKLANE_KAFKA__SASL_USERNAME
  value: {{ $kafka.sasl.username | quote }}
{{- else if $kafka.sasl.existingSecret }}
- name: TICKLANE_KAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.usernameKey }}
      optional: true
{{- end }}
{{- if or $kafka.sasl.password $kafka.sasl.existingSecret }}
- name: TICKLANE_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .kafkaSecret | default (include "ticklane.kafkaSecretName" $root) }}
      key: {{ $kafka.sasl.passwordKey }}
{{- end }}
{{- if or $kafka.ca.existingSecret $kafka.ca.existingConfigMap }}
- name: TICKLANE_KAFKA__SSL_CA_LOCATION
  value: /etc/ticklane/kafka-ca/{{ $kafka.ca.key }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Mounts every ticklane container gets: settings, data, /tmp and the Kafka CA. */}}
{{- define "ticklane.volumeMounts" -}}
- name: config
  mountPath: /etc/ticklane/config
  readOnly: true
- name: data
  mountPath: /var/lib/ticklane
- name: tmp
  mountPath: /tmp
{{- if or .Values.kafka.ca.existingSecret .Values.kafka.ca.existingConfigMap }}
- name: kafka-ca
  mountPath: /etc/ticklane/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Volumes behind those mounts, but `data` (each workload says what holds its state). (dict "root" $ "configMap" name) */}}
{{- define "ticklane.volumes" -}}
{{- $root := .root -}}
- name: config
  configMap:
    name: {{ .configMap | default (include "ticklane.resourceName" (list $root "config")) }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- with $root.Values.kafka.ca }}
{{- if .existingSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .existingSecret }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- else if .existingConfigMap }}
- name: kafka-ca
  configMap:
    name: {{ .existingConfigMap }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* /health keeps the container alive, /ready takes it into service; startup waits for the first. (dict "port" name-or-number) */}}
{{- define "ticklane.probes" -}}
startupProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /ready
    port: {{ .port }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Pod-level settings shared by every workload. */}}
{{- define "ticklane.podSpecCommon" -}}
serviceAccountName: {{ include "ticklane.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod annotations: a checksum of the settings so a change rolls the pods. */}}
{{- define "ticklane.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Values the schema cannot check: combinations and uniqueness. Failing here names the value to fix. */}}
{{- define "ticklane.validate" -}}
{{- $kafka := .Values.kafka -}}
{{- if and (hasPrefix "SASL_" $kafka.securityProtocol) (not $kafka.saslMechanism) -}}
{{- fail (printf "kafka.saslMechanism: required with kafka.securityProtocol=%s" $kafka.securityProtocol) -}}
{{- end -}}
{{- if and (hasPrefix "SASL_" $kafka.securityProtocol) (not (or $kafka.sasl.password $kafka.sasl.existingSecret)) -}}
{{- fail "kafka.sasl: a SASL protocol needs kafka.sasl.password or kafka.sasl.existingSecret" -}}
{{- end -}}
{{- if and $kafka.sasl.password $kafka.sasl.existingSecret -}}
{{- fail "kafka.sasl: set password or existingSecret, not both" -}}
{{- end -}}
{{- if and $kafka.ca.existingSecret $kafka.ca.existingConfigMap -}}
{{- fail "kafka.ca: set existingSecret or existingConfigMap, not both" -}}
{{- end -}}
{{- $feeds := dict -}}
{{- range .Values.producer.feeds -}}
{{- if hasKey $feeds .name -}}{{- fail (printf "producer.feeds: the name %q is used twice" .name) -}}{{- end -}}
{{- $_ := set $feeds .name true -}}
{{- end -}}
{{- with .Values.producer.databento -}}
{{- if and $.Values.producer.feeds (not (or .apiKey .existingSecret)) -}}
{{- fail "producer.databento: live feeds need apiKey or existingSecret (DATABENTO_API_KEY)" -}}
{{- end -}}
{{- end -}}
{{- if .Values.executor.enabled -}}
{{- $names := dict -}}
{{- $groups := dict -}}
{{- $schemas := dict -}}
{{- range .Values.executor.accounts -}}
{{- if hasKey $names .name -}}{{- fail (printf "executor.accounts: the name %q is used twice" .name) -}}{{- end -}}
{{- $_ := set $names .name true -}}
{{- $group := include "ticklane.accountGroupId" . -}}
{{- if hasKey $groups $group -}}{{- fail (printf "executor.accounts[%s].groupId: %q is another account's consumer group" .name $group) -}}{{- end -}}
{{- $_ := set $groups $group true -}}
{{- $schema := include "ticklane.accountLedgerSchema" . -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_]{0,62}$" $schema) -}}{{- fail (printf "executor.accounts[%s].ledgerSchema: %q is not a PostgreSQL schema name ([a-z_][a-z0-9_]*)" .name $schema) -}}{{- end -}}
{{- if hasKey $schemas $schema -}}{{- fail (printf "executor.accounts[%s].ledgerSchema: %q is another account's ledger" .name $schema) -}}{{- end -}}
{{- $_ := set $schemas $schema true -}}
{{- if and .dryRun (ne .broker "tastytrade") -}}{{- fail (printf "executor.accounts[%s].dryRun: only for broker tastytrade" .name) -}}{{- end -}}
{{- if and (eq .broker "schwab") (not $.Values.executor.persistence.enabled) -}}
{{- fail (printf "executor.accounts[%s]: a Schwab executor rewrites its token file; it needs executor.persistence.enabled" .name) -}}
{{- end -}}
{{- $credentials := .credentials | default dict -}}
{{- if and (ne .broker "paper") (not (or $credentials.existingSecret $credentials.data)) -}}
{{- fail (printf "executor.accounts[%s].credentials: broker %s needs existingSecret or data" .name .broker) -}}
{{- end -}}
{{- end -}}
{{- with .Values.executor.ledger -}}
{{- if and (eq .store "postgres") (not (or .postgres.dsn .postgres.existingSecret)) -}}
{{- fail "executor.ledger.postgres: the postgres ledger needs dsn or existingSecret" -}}
{{- end -}}
{{- if and (eq .store "sqlite") (not $.Values.executor.persistence.enabled) -}}
{{- fail "executor.persistence.enabled: the SQLite ledger must be on a volume; enable it or use executor.ledger.store=postgres" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.api.enabled (eq .Values.api.store.type "postgres") (not (or .Values.api.store.postgres.dsn .Values.api.store.postgres.existingSecret)) -}}
{{- fail "api.store.postgres: the postgres store needs dsn or existingSecret" -}}
{{- end -}}
{{- end -}}
