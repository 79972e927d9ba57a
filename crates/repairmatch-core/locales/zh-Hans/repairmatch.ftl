# 简体中文（zh-Hans）：收单机构的银行 App 向商户展示的维修建议。
#
# 语气：像银行客服给商户回消息，简洁、具体、说明下一步怎么做，不要逐字直译英文。
# 用词：商户、POS机/终端、维修网点、官方授权维修中心、银行指定服务网点、
# 第三方维修服务商、保修期内/保修期外、到店维修、上门维修、寄修、换机、远程支持、
# 客服热线、收单机构、布放。
# 排版：中文与数字、拉丁字母之间留一个空格（“距离 3.5 公里”“PAX 官方授权维修中心”），
# 使用全角标点。数字由服务端先格式化好：$distance_km 为“10.4”，金额见下方 money。

## 格式

# 金额：$amount 为按 ISO 4217 小数位格式化的金额，$currency 为货币代码。
# 中文读者熟悉的货币用符号，其余保留代码。
money =
    { $currency ->
        [CNY] ¥{ $amount }
        [USD] US${ $amount }
        [EUR] €{ $amount }
        [GBP] £{ $amount }
        [HKD] HK${ $amount }
        [MOP] MOP${ $amount }
        [TWD] NT${ $amount }
        [JPY] JP¥{ $amount }
        [KRW] ￦{ $amount }
        [SGD] S${ $amount }
        [AUD] A${ $amount }
        [CAD] CA${ $amount }
        [INR] ₹{ $amount }
        [BRL] R${ $amount }
       *[other] { $amount } { $currency }
    }

# 列表：项与项之间，以及最后一项之前。
list-and-separator = {"、"}
list-and-last = {"、"}
list-or-separator = {"、"}
list-or-last = {"或"}
list-clauses-separator = {"；"}
list-clauses-last = {"；"}

## 服务方式与故障类型（嵌在句子中使用）

mode-walk-in = 到店维修
mode-onsite = 上门维修
mode-mail-in = 寄修
mode-exchange = 换机
mode-remote = 远程支持

# 句中写作“{ $fault }故障”。
fault-screen = 屏幕
fault-keypad = 按键
fault-printer = 打印机
fault-card-reader = 读卡器
fault-battery-power = 电池/电源
fault-connectivity = 网络/通信
fault-software = 软件
fault-tamper = 防拆
fault-other = 其他
# 请求未指定故障类型。
fault-unspecified = 此类

## 推荐理由（每条一句短语）

reason-deploying-bank-service-point = 布放机具的银行指定服务网点
reason-authorized = { $brand } 官方授权维修中心
reason-model-listed = 可维修 { $model } 型号
reason-warranty-covered = 可享受厂商保修
reason-distance = 距离 { $distance_km } 公里
reason-beyond-trip-cap = 超出 { $cap_km } 公里的到店/上门范围，不提供到店或上门维修
reason-rated = 评分 { $average } 分（{ $count } 条评价）
reason-no-reviews = 暂无客户评价
reason-quote = 报价 { $low }–{ $high }
reason-no-price = 未公布此类故障的维修报价
# 网点对本次维修自身的保修，以及服务条款的网址。
reason-repair-warranty = 维修保修 { $days } 天
reason-service-terms = 服务条款：{ $url }
# $hours：向上取整的小时数；$modes：本次可用的服务方式。
reason-back-in-service = 预计约 { $hours } 小时恢复收款（{ $modes }）
reason-hours-unknown = 营业时间未知

## 下一步建议

guidance-tamper = 机具触发防拆：请不要反复开关机，也不要自行拆机。只有具备密钥注入条件的 { $brand } 官方授权维修中心才能重新灌装密钥；否则请申请换机。
guidance-bank-deployed = 这台POS机由 { $bank } 布放：请先通过该行的服务渠道报修，银行可能直接为您换机。
guidance-in-warranty = 机具在保修期内：请选择可享受厂商保修的维修网点，并携带保修卡和购买凭证。
guidance-check-purchase-date = 请核对购买日期：{ $brand } 终端保修 { $months } 个月，保修期内可在官方授权维修中心免费维修。
guidance-out-of-warranty = 机具已过保修期：建议多比较几家报价；如选择第三方维修服务商，请书面约定维修范围、费用和交付时间。
# $channel：优先联系的银行或品牌。
guidance-remote-first = 软件和网络/通信故障通常可以远程解决：送修前请先拨打 { $channel } 的客服热线，获取远程指导。
guidance-book-appointment = 建议提前预约服务，并携带维修网点要求的相关材料。
guidance-check-repair-terms = 交机前，请向维修网点确认本次维修的保修期限及服务条款。
guidance-do-not-open = 不建议自行拆机维修：POS机带有防拆保护，拆机会清除密钥，并导致保修失效。
guidance-after-repair = 维修完成后，请先做一笔测试交易，确认恢复正常；按提示更新固件，必要时重新绑定商户账户。

## 查询结果为空的原因（第一条建议）

diagnosis-unknown-brand = 系统中查不到“{ $brand }”这个品牌：没有维修网点登记该品牌，也没有该品牌的客服渠道。请查看机具底部的铭牌（通常与型号、序列号印在一起），核对品牌名称后重新查询。
diagnosis-nobody-covers-with-support = 您所在的位置暂无可维修 { $brand } 终端的维修网点：请通过远程支持渠道联系，对方可安排寄修或换机。
diagnosis-nobody-covers = 您所在的位置暂无可维修 { $brand } 终端的维修网点，系统中也没有 { $brand } 的客服渠道。
# $count 家网点覆盖商户位置；$complete 为“no”时，还有网点未检查（数量为下限）。
# $causes：diagnosis-cause 的列表。
diagnosis-none-fits =
    您所在的位置有 { $complete ->
        [yes] { $count } 家
       *[no] 至少 { $count } 家
    } { $brand } 维修网点，但都不符合本次查询的条件。排除原因：{ $causes }。
# 请求中的一项条件，以及因此被排除的网点数。
diagnosis-cause = { $cause }（{ $count } 家）

cause-model = 未登记 { $brand } { $model } 型号
cause-fault = 不维修{ $fault }故障
cause-distance-cap = 距离超出 { $cap_km } 公里上限，且只提供到店或上门维修
cause-service-mode = 不提供{ $modes }
cause-rating-best = 评分未达到 { $min_rating } 分，最高仅 { $best } 分
cause-rating-unrated = 暂无客户评价，达不到 { $min_rating } 分的最低评分
cause-price-currency = 以 { $quoted } 报价，与价格上限的币种 { $cap_currency } 不同
cause-above-price-cap = { $fault }故障最低报价 { $lowest }，高于价格上限 { $cap }
cause-unpriced = 未公布{ $fault }故障的维修报价，无法确认是否在价格上限内
cause-repair-warranty-unpublished = 未公布维修保修期，达不到至少 { $min_days } 天的要求
cause-repair-warranty-short = 维修保修期不足 { $min_days } 天，最长仅 { $days } 天
cause-closed = 所选时间不营业
cause-tamper-policy = 不能处理触发防拆的机具：须由具备密钥注入条件的 { $brand } 授权维修中心处理，或换机
cause-remote-cannot-fix = 在您所在位置只提供远程支持，无法解决{ $fault }故障

## 指定网点未被推荐的原因（Exclusion.detail）

exclusion-not-found = 没有这个编号的维修网点
exclusion-inactive = 该网点已停止服务
exclusion-brand = 不维修 { $brand } 品牌
exclusion-model = 可维修 { $brand }，但不支持 { $model } 型号
exclusion-fault = 不维修{ $fault }故障
exclusion-coverage = 您不在该网点的服务范围内（相距 { $distance_km } 公里）
exclusion-distance-cap = 相距 { $distance_km } 公里，超出 { $cap_km } 公里的到店/上门距离上限
exclusion-service-mode = 不提供所选的任何服务方式
exclusion-unrated = 暂无客户评价
exclusion-rated-below = 评分 { $average } 分，低于要求的 { $min_rating } 分
exclusion-unpriced = 未公布此类故障的维修报价
exclusion-other-currency = 以 { $currency } 报价，与价格上限的币种 { $cap_currency } 不同
exclusion-above-price-cap = 此类故障的最低报价 { $lowest }，高于价格上限
exclusion-repair-warranty-unpublished = 未公布维修保修期
exclusion-repair-warranty-short = 维修保修 { $days } 天，少于要求的 { $min_days } 天
exclusion-closed = 所选时间不营业
exclusion-other-banks-only = 银行指定服务网点只受理其合作银行布放的POS机
exclusion-tamper-policy = 触发防拆的机具须由具备密钥注入条件的品牌授权维修中心处理，或换机
exclusion-remote-cannot-fix = 远程支持无法解决此类故障，且没有其他可用的服务方式

## Find 请求字段的错误（google.rpc.BadRequest 的中文说明）

violation-required = 必须填写
violation-too-long = 不能超过 { $max } 个字符
violation-latitude = 纬度须为 -90 到 90 之间的数字
violation-longitude = 经度须为 -180 到 180 之间的数字
violation-currency-code = 须为 ISO 4217 货币代码，例如 CNY 或 USD
violation-negative = 不能为负数
violation-unknown-value = 无法识别的取值 { $value }
violation-unknown-or-unspecified = 无法识别或未指定的取值 { $value }
violation-bank-id-required = 银行布放的POS机必须填写布放银行
violation-future-date = 不能晚于今天
violation-date-format = 须为 YYYY-MM-DD 格式的日期
violation-distance-cap = 须在 0（使用排序方案的默认上限）到 { $max_km } 公里之间
violation-min-rating = 须为 0（不限）或 1 到 5 之间的评分
violation-timestamp = 不是有效的时间
violation-unknown-profile = 没有名为 { $profile } 的排序方案
violation-too-many-ids = 最多 { $max } 个编号
violation-page-token-malformed = 格式不正确
violation-page-token-other-query = 属于另一个查询，不能用于本次查询
violation-unknown-bank = 系统中没有编号为 { $bank_id } 的银行
violation-country-code = 须为 ISO 3166-1 alpha-2 国家或地区代码：两个大写字母，例如 CN
violation-repair-warranty-days = 不能超过 { $max_days } 天（十年）

## 错误说明（google.rpc.LocalizedMessage；Status.message 保持英文）

error-invalid-argument = 请求参数有误，请修改后重试：{ $violations }
violation-item = { $field }：{ $description }
error-repair-center-not-found = 没有编号为 { $id } 的维修网点
error-brand-not-found = 目录中没有品牌 { $name }
error-unauthenticated = 请提供有效的 API 密钥
error-permission-denied = 无权执行此操作
error-profile-not-allowed = 机构 { $tenant } 无权使用排序方案 { $profile }
error-stale-etag = 该网点信息已被更新：请重新读取后再提交
error-rate-limited = 机构 { $tenant } 的调用次数已超出限额，请在 { $retry_ms } 毫秒后重试
error-store-unavailable = 维修网点目录暂时无法访问，本次未写入任何内容，请稍后重试
error-storage = 服务内部存储出错，请稍后重试
error-internal = 服务内部错误，请稍后重试
