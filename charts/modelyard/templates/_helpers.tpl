{{- define "yard.name" -}}
{{- printf "%s-modelyard" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "yard.selector" -}}
app.kubernetes.io/name: modelyard-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "yard.labels" -}}
{{ include "yard.selector" . }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: modelyard
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "yard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Secret names and keys: the user's Secret when named, else the chart's own */}}
{{- define "yard.postgresSecret" -}}{{ .Values.postgres.existingSecret | default (include "yard.name" .) }}{{- end -}}
{{- define "yard.postgresKey" -}}{{ ternary .Values.postgres.key "postgres-url" (ne .Values.postgres.existingSecret "") }}{{- end -}}
{{- define "yard.blobsSecret" -}}{{ .Values.blobs.existingSecret | default (include "yard.name" .) }}{{- end -}}
{{- define "yard.blobsKey" -}}{{ ternary .Values.blobs.key "blob-uri" (ne .Values.blobs.existingSecret "") }}{{- end -}}
{{- define "yard.tokenSecret" -}}{{ .Values.adminToken.existingSecret | default (include "yard.name" .) }}{{- end -}}
{{- define "yard.tokenKey" -}}{{ ternary .Values.adminToken.key "admin-token" (ne .Values.adminToken.existingSecret "") }}{{- end -}}

{{/* the chart makes a Secret unless every value comes from the user's Secrets */}}
{{- define "yard.ownSecret" -}}
{{- if or (not .Values.postgres.existingSecret) (not .Values.blobs.existingSecret) (not .Values.adminToken.existingSecret) }}true{{ end -}}
{{- end -}}

{{- define "yard.check" -}}
{{- if not (or .Values.postgres.url .Values.postgres.existingSecret) }}{{ fail "Set postgres.url (postgresql://user:password@host:5432/db) or postgres.existingSecret: the server keeps its rows in PostgreSQL." }}{{ end -}}
{{- if not (or .Values.blobs.uri .Values.blobs.existingSecret) }}{{ fail "Set blobs.uri (s3://bucket/prefix, ...) or blobs.existingSecret: the server keeps artifacts in object storage." }}{{ end -}}
{{- end -}}

{{/* the environment of the server, the migration Job and the init container */}}
{{- define "yard.env" -}}
- name: YARD_URI
  valueFrom:
    secretKeyRef: {name: {{ include "yard.postgresSecret" . }}, key: {{ include "yard.postgresKey" . }}}
- name: YARD_BLOB_URI
  valueFrom:
    secretKeyRef: {name: {{ include "yard.blobsSecret" . }}, key: {{ include "yard.blobsKey" . }}}
- {name: TMPDIR, value: /tmp}
- {name: HOME, value: /tmp}
- {name: PYTHONUNBUFFERED, value: "1"}
{{- range $k, $v := .Values.blobs.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "yard.envFrom" -}}
{{- with .Values.blobs.envFromSecret }}
envFrom:
  - secretRef: {name: {{ . }}}
{{- end }}
{{- end -}}

{{- define "yard.containerSecurity" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "yard.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* the server's ServiceAccount: the chart's own (serviceAccount.create) or the one named */}}
{{- define "yard.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}{{ .Values.serviceAccount.name | default (include "yard.name" .) }}
{{- else -}}{{ .Values.serviceAccount.name | default "default" }}{{- end -}}
{{- end -}}
