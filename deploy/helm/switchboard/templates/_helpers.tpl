{{/* Names and labels shared by every template. */}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.fullname" -}}
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

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A component's name, labels and selector: (dict "root" $ "component" "edge"). */}}
{{- define "switchboard.componentName" -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchboard.componentSelector" -}}
{{ include "switchboard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchboard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "switchboard.secretName" -}}
{{- printf "%s-secrets" (include "switchboard.fullname" .) -}}
{{- end -}}

{{/* Whether auth/router share external stores. */}}
{{- define "switchboard.hasDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "switchboard.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* An env var from a Secret: (dict "name" "VAR" "secret" "s" "key" "k"). */}}
{{- define "switchboard.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{- define "switchboard.databaseUrlEnv" -}}
{{- if .Values.database.existingSecret -}}
{{ include "switchboard.secretEnv" (dict "name" "SWITCHBOARD_AUTH_DATABASE_URL" "secret" .Values.database.existingSecret "key" .Values.database.existingSecretKey) }}
{{- else if .Values.database.url -}}
{{ include "switchboard.secretEnv" (dict "name" "SWITCHBOARD_AUTH_DATABASE_URL" "secret" (include "switchboard.secretName" .) "key" "database-url") }}
{{- end -}}
{{- end -}}

{{/* (dict "root" $ "name" "SWITCHBOARD_ROUTER_REDIS_URL") */}}
{{- define "switchboard.redisUrlEnv" -}}
{{- $v := .root.Values.redis -}}
{{- if $v.existingSecret -}}
{{ include "switchboard.secretEnv" (dict "name" .name "secret" $v.existingSecret "key" $v.existingSecretKey) }}
{{- else if $v.url -}}
{{ include "switchboard.secretEnv" (dict "name" .name "secret" (include "switchboard.secretName" .root) "key" "redis-url") }}
{{- end -}}
{{- end -}}

{{/* Extra settings, name: value, sorted. */}}
{{- define "switchboard.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end -}}
{{- end -}}

{{- define "switchboard.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{ include "switchboard.componentName" . }}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{- define "switchboard.operatorNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- join "," .Values.operator.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
Refuses configurations that would lose or split state: SQLite and in-memory limits/pool state belong to
one process, so more than one auth or router replica needs the external stores.
*/}}
{{- define "switchboard.validate" -}}
{{- $db := include "switchboard.hasDatabase" . -}}
{{- $redis := include "switchboard.hasRedis" . -}}
{{- if and (gt (int .Values.auth.replicas) 1) (not $db) -}}
{{- fail (printf "auth.replicas is %d, but auth keeps keys and the usage ledger in an embedded SQLite file unless database.url or database.existingSecret names a PostgreSQL database: set one, or set auth.replicas to 1" (int .Values.auth.replicas)) -}}
{{- end -}}
{{- if and (gt (int .Values.auth.replicas) 1) (not $redis) -}}
{{- fail (printf "auth.replicas is %d, but auth keeps per-key limits in its own memory unless redis.url or redis.existingSecret names a Redis: set one, or set auth.replicas to 1" (int .Values.auth.replicas)) -}}
{{- end -}}
{{- if and (gt (int .Values.router.replicas) 1) (not $redis) -}}
{{- fail (printf "router.replicas is %d, but the router keeps leases, holds and operator-managed accounts in its own memory unless redis.url or redis.existingSecret names a Redis: set one, or set router.replicas to 1" (int .Values.router.replicas)) -}}
{{- end -}}
{{- if and .Values.database.url .Values.database.existingSecret -}}
{{- fail "set database.url or database.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.existingSecret -}}
{{- fail "set redis.url or redis.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.auth.sqlite.existingClaim $db -}}
{{- fail "auth.sqlite.existingClaim is for the embedded SQLite mode; it cannot be combined with an external database" -}}
{{- end -}}
{{- $needed := add (int .Values.edge.preStopSleepSeconds) (int .Values.edge.drainSeconds) -}}
{{- if le (int .Values.edge.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "edge.terminationGracePeriodSeconds (%d) must exceed edge.preStopSleepSeconds + edge.drainSeconds (%d), or Kubernetes kills the edge before its streams are drained and their usage reported" (int .Values.edge.terminationGracePeriodSeconds) (int $needed)) -}}
{{- end -}}
{{- if and .Values.edge.autoscaling.enabled (gt (int .Values.edge.autoscaling.minReplicas) (int .Values.edge.autoscaling.maxReplicas)) -}}
{{- fail "edge.autoscaling.minReplicas must not exceed edge.autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/* The operator's namespaced permissions (see operator-rbac.yaml). */}}
{{- define "switchboard.operatorRules" -}}
- apiGroups: ["switchboard.dev"]
  resources: ["upstreamaccounts"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["switchboard.dev"]
  resources: ["upstreamaccounts/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["switchboard.dev"]
  resources: ["upstreamaccounts/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* NetworkPolicy pieces: every pod may resolve names; metrics ports open to networkPolicy.metricsFrom. */}}
{{- define "switchboard.dnsEgress" -}}
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}
{{- define "switchboard.metricsIngress" -}}
- ports:
    - {port: {{ .port }}, protocol: TCP}
  {{- with .from }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
