{{- define "md.name" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "md.selector" -}}
app.kubernetes.io/name: modelyard-model
app.kubernetes.io/instance: {{ include "md.name" . }}
{{- end -}}

{{- define "md.labels" -}}
{{ include "md.selector" . }}
app.kubernetes.io/component: model-server
app.kubernetes.io/part-of: modelyard
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* seconds: the spec's request timeout, rounded up */}}
{{- define "md.timeoutS" -}}
{{- $ms := .Values.spec.timeout_ms | default 2000 | float64 -}}
{{- ceil (divf $ms 1000) | int -}}
{{- end -}}

{{/* checks JSON schema cannot express: the spec's cross-field rules (the server checks them again) */}}
{{- define "md.check" -}}
{{- $spec := .Values.spec -}}
{{- if not .Values.image.repository }}{{ fail "image.repository is required (the image `yard build` made)" }}{{ end -}}
{{- if not .Values.image.tag }}{{ fail "image.tag is required" }}{{ end -}}
{{- $traffic := $spec.traffic | default (dict "kind" "single" "model" "primary") -}}
{{- $slots := list -}}
{{- if eq $traffic.kind "single" }}{{ $slots = list ($traffic.model | default "primary") }}
{{- else if eq $traffic.kind "canary" }}{{ $slots = keys $traffic.weights }}
{{- else if eq $traffic.kind "ab" }}{{ $slots = keys $traffic.arms }}
{{- else if eq $traffic.kind "blue_green" }}{{ $slots = list $traffic.active $traffic.preview }}
{{- else if eq $traffic.kind "shadow" }}{{ $slots = list $traffic.primary $traffic.shadow }}
{{- end -}}
{{- range $slots }}
{{- if not (hasKey $spec.models .) }}{{ fail (printf "spec.traffic sends requests to model slot %q, which is not in spec.models (slots: %s)" . (keys $spec.models | sortAlpha | join ", ")) }}{{ end -}}
{{- end -}}
{{- range $kind, $weights := dict "canary" $traffic.weights "ab" $traffic.arms }}
{{- if and (eq $traffic.kind $kind) $weights }}
{{- $total := 0.0 }}{{ range $_, $w := $weights }}{{ $total = addf $total $w }}{{ end }}
{{- if or (gt $total 100.000001) (lt $total 99.999999) }}{{ fail (printf "spec.traffic weights must add up to 100 (percent); got %v" $total) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if hasKey $spec "fallback" }}
{{- $fb := $spec.fallback | default dict }}
{{- if eq (hasKey $fb "model") (hasKey $fb "constant") }}{{ fail "spec.fallback needs exactly one of 'model' (a model reference) or 'constant' (a value)" }}{{ end -}}
{{- end -}}
{{- end -}}
