{{/* Names and labels shared by every object of the chart. */}}
{{- define "hookline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* app.kubernetes.io/name is hookline-ingest or hookline-worker: the
PodMonitor and ServiceMonitor take the Prometheus job from it, and the alert
rules select those jobs. */}}
{{- define "hookline.selectorLabels" -}}
app.kubernetes.io/name: hookline-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* app.kubernetes.io/version is the version of what the object runs:
hookline's, unless the context gives another ("version": the redis_exporter
objects give the exporter's image tag). */}}
{{- define "hookline.labels" -}}
{{ include "hookline.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: hookline
app.kubernetes.io/version: {{ get . "version" | default .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "hookline.commonLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: hookline
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hookline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "hookline.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-secrets" (include "hookline.fullname" .)) }}
{{- end -}}

{{- define "hookline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "hookline.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* Environment both programs share: NATS, Redis, encryption keys. */}}
{{- define "hookline.commonEnv" -}}
- name: NATS_URL
{{- if .Values.nats.url }}
  value: {{ .Values.nats.url | quote }}
{{- else }}
  valueFrom:
    secretKeyRef: { name: {{ include "hookline.secretName" . }}, key: NATS_URL }
{{- end }}
- name: REDIS_URL
{{- if .Values.redis.url }}
  value: {{ .Values.redis.url | quote }}
{{- else }}
  valueFrom:
    secretKeyRef: { name: {{ include "hookline.secretName" . }}, key: REDIS_URL }
{{- end }}
- name: HOOKLINE_ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef: { name: {{ include "hookline.secretName" . }}, key: HOOKLINE_ENCRYPTION_KEYS }
{{- with .Values.hookline.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings both Deployments share. */}}
{{- define "hookline.podSpec" -}}
serviceAccountName: {{ include "hookline.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "hookline.selectorLabels" . | nindent 8 }}
{{- end -}}
